"""Unit tests for ingest.readers: Markdown/text, HTML and PDF readers, and their errors."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ingest.readers import (
    HtmlReader,
    MarkdownTextReader,
    PdfReader,
    UnreadableFileError,
    decode,
    read_document,
    reader_for,
    title_from_markdown,
)

NOTES = Path(__file__).resolve().parents[2] / "notes"
PDF_NOTE = NOTES / "15-prompt-engineering.pdf"

# --- Markdown and text ------------------------------------------------------------------------


def test_markdown_kept_byte_for_byte(tmp_path):
    raw = (
        "---\nfront: matter\n---\n"
        "# 生成AIノート  \r\n"
        "\tタブ と 末尾の空白   \n"
        "\n\n\n"
        "## 小見出し\n"
        "  * item\n"
        "no final newline"
    )
    path = tmp_path / "note.md"
    path.write_bytes(raw.encode("utf-8"))
    doc = read_document(path)
    assert doc.text == raw
    assert doc.metadata["kind"] == "markdown"
    assert doc.metadata["title"] == "生成AIノート"
    assert doc.metadata["path"] == str(path)


def test_markdown_title_is_first_h1_outside_fences(tmp_path):
    text = "intro\n## Not h1\n```\n# fenced comment\n```\n#  Real Title  ##\n# Second\n"
    path = tmp_path / "n.markdown"
    path.write_text(text, encoding="utf-8")
    assert read_document(path).metadata["title"] == "Real Title"
    assert title_from_markdown(text, "fallback") == "Real Title"


def test_markdown_title_falls_back_to_file_stem(tmp_path):
    path = tmp_path / "my-note.md"
    path.write_text("## only h2\ntext\n", encoding="utf-8")
    assert read_document(path).metadata["title"] == "my-note"


def test_utf8_bom_is_removed(tmp_path):
    path = tmp_path / "bom.md"
    path.write_bytes(b"\xef\xbb\xbf# Title\nbody\n")
    doc = read_document(path)
    assert doc.text == "# Title\nbody\n"
    assert doc.metadata["title"] == "Title"


def test_plain_text_kind_and_title(tmp_path):
    path = tmp_path / "memo.txt"
    path.write_text("# looks like a heading\nbut this is text\n", encoding="utf-8")
    doc = read_document(path)
    assert doc.metadata["kind"] == "text"
    assert doc.metadata["title"] == "memo"
    assert doc.text == "# looks like a heading\nbut this is text\n"


def test_shift_jis_text_decodes(tmp_path):
    text = (
        "日本語のテキストファイルです。\n"
        "文字コードはシフトJISで保存されています。\n"
        "読み込みのテストに使います。機種依存文字も少し：①②③。\n"
    )
    path = tmp_path / "sjis.txt"
    data = text.encode("cp932")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    path.write_bytes(data)
    doc = read_document(path)
    assert doc.text == text


def test_nul_bytes_mean_binary(tmp_path):
    path = tmp_path / "blob.md"
    path.write_bytes(b"# Title\n\x00\x01\x02binary")
    with pytest.raises(UnreadableFileError, match="binary"):
        read_document(path)
    with pytest.raises(UnreadableFileError, match="binary"):
        decode(b"abc\x00def", path)


@pytest.mark.parametrize("content", [b"", b"   \n\n\t\n"])
def test_empty_file_raises(tmp_path, content):
    path = tmp_path / "empty.md"
    path.write_bytes(content)
    with pytest.raises(UnreadableFileError, match="empty"):
        read_document(path)


def test_missing_file_raises_unreadable(tmp_path):
    with pytest.raises(UnreadableFileError, match="cannot read"):
        read_document(tmp_path / "gone.md")


def test_os_error_while_reading_becomes_unreadable(tmp_path, monkeypatch):
    path = tmp_path / "secret.md"
    path.write_text("# x\n", encoding="utf-8")

    def denied(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(UnreadableFileError, match="cannot read: Permission denied"):
        read_document(path)


@pytest.mark.parametrize("name", ["a.docx", "b.py", "Makefile", "c.png"])
def test_unsupported_suffix_raises(tmp_path, name):
    path = tmp_path / name
    path.write_text("whatever", encoding="utf-8")
    assert reader_for(path) is None
    with pytest.raises(UnreadableFileError, match="unsupported file type"):
        read_document(path)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("a.md", MarkdownTextReader),
        ("a.MD", MarkdownTextReader),
        ("a.txt", MarkdownTextReader),
        ("a.rst", MarkdownTextReader),
        ("a.html", HtmlReader),
        ("a.HTM", HtmlReader),
        ("a.pdf", PdfReader),
    ],
)
def test_reader_for_suffixes(name, cls):
    assert type(reader_for(Path(name))) is cls


# --- HTML -------------------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html>
<head>
<title>Page Title</title>
<style>body { color: red; } .hidden-style {}</style>
<script>var secretScript = "do not index";</script>
</head>
<body>
<h1>Main   heading</h1>
<p>First paragraph
spread over two source lines.</p>
<ul>
<li>item one</li>
<li>item <b>two</b></li>
</ul>
<h3>Deeper</h3>
<pre>code line</pre>
<table><tr><td>cell</td><th>head</th></tr></table>
<noscript>enable js</noscript>
</body>
</html>
"""


def test_html_blocks_headings_and_line_map(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(HTML, encoding="utf-8")
    doc = read_document(path)
    assert doc.text == (
        "# Main heading\n"
        "First paragraph spread over two source lines.\n"
        "item one\n"
        "item two\n"
        "### Deeper\n"
        "code line\n"
        "cell\n"
        "head\n"
    )
    assert doc.metadata["kind"] == "html"
    assert doc.metadata["title"] == "Page Title"
    line_map = doc.metadata["line_map"]
    assert line_map == [9, 10, 13, 14, 16, 17, 18, 18]
    source = HTML.splitlines()
    for out_line, src_line in zip(doc.text.splitlines(), line_map, strict=True):
        first_word = out_line.lstrip("# ").split()[0]
        assert first_word in source[src_line - 1]


def test_html_script_style_noscript_removed(tmp_path):
    path = tmp_path / "page.htm"
    path.write_text(HTML, encoding="utf-8")
    text = read_document(path).text
    for hidden in ("secretScript", "color: red", "hidden-style", "enable js"):
        assert hidden not in text


def test_html_title_falls_back_to_h1_then_stem(tmp_path):
    with_h1 = tmp_path / "a.html"
    with_h1.write_text("<body><h2>Sub</h2><h1>The H1</h1><p>x</p></body>", encoding="utf-8")
    assert read_document(with_h1).metadata["title"] == "The H1"
    plain = tmp_path / "stem-name.html"
    plain.write_text("<body><p>only text</p></body>", encoding="utf-8")
    assert read_document(plain).metadata["title"] == "stem-name"


def test_html_without_text_raises(tmp_path):
    path = tmp_path / "blank.html"
    path.write_text("<html><head><script>x()</script></head><body></body></html>", "utf-8")
    with pytest.raises(UnreadableFileError, match="no text"):
        read_document(path)


def test_html_japanese_in_shift_jis(tmp_path):
    html = (
        '<html><head><meta charset="shift_jis"><title>ノート</title></head>'
        "<body><h2>見出しです</h2><p>これは本文の段落です。文字コードはシフトJISです。</p>"
        "<p>二つ目の段落もあります。</p></body></html>"
    )
    path = tmp_path / "sj.html"
    path.write_bytes(html.encode("cp932"))
    doc = read_document(path)
    assert doc.text.splitlines() == [
        "## 見出しです",
        "これは本文の段落です。文字コードはシフトJISです。",
        "二つ目の段落もあります。",
    ]


def test_html_nested_list_text_not_duplicated(tmp_path):
    path = tmp_path / "nested.html"
    path.write_text(
        "<body><ul>\n<li>outer\n<ul>\n<li>inner</li>\n</ul>\n</li>\n</ul></body>", "utf-8"
    )
    text = read_document(path).text
    assert text.count("inner") == 1, text  # actual: "outer inner\ninner\n"


def test_html_text_in_div_is_kept(tmp_path):
    path = tmp_path / "div.html"
    path.write_text(
        "<body><h1>T</h1><div>Text written straight in a div.</div><p>para</p></body>", "utf-8"
    )
    text = read_document(path).text
    assert "Text written straight in a div." in text, text  # actual: "# T\npara\n"


# --- PDF --------------------------------------------------------------------------------------


def test_bundled_pdf_reads_with_page_starts():
    import pypdf

    doc = read_document(PDF_NOTE)
    assert doc.metadata["kind"] == "pdf"
    assert doc.metadata["title"] == "Prompt engineering basics"
    assert doc.metadata["path"] == str(PDF_NOTE)
    text = doc.text
    assert text.startswith("Prompt engineering basics\n")
    assert "Temperature divides the logits before the softmax." in text
    page_starts = doc.metadata["page_starts"]
    pages = [p.extract_text().strip("\n") for p in pypdf.PdfReader(str(PDF_NOTE)).pages]
    assert len(page_starts) == len(pages) >= 2
    assert page_starts[0] == 0
    for start, page in zip(page_starts, pages, strict=True):
        assert text[start : start + len(page)] == page
        assert start == 0 or text[start - 2 : start] == "\n\n"
    assert len(text) == page_starts[-1] + len(pages[-1]) + 2


def test_corrupt_pdf_raises(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(random.Random(0).randbytes(4096))
    with pytest.raises(UnreadableFileError, match="not a readable PDF"):
        read_document(path)


def test_truncated_pdf_raises(tmp_path):
    path = tmp_path / "cut.pdf"
    path.write_bytes(PDF_NOTE.read_bytes()[:300])
    with pytest.raises(UnreadableFileError):
        read_document(path)
