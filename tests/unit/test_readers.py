"""Unit tests for ingest.readers: Markdown/text, HTML and PDF readers, and their errors."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.readers import (
    HtmlReader,
    MarkdownTextReader,
    PdfReader,
    UnreadableFileError,
    clean_page_text,
    decode,
    normalise_newlines,
    read_document,
    reader_for,
    title_from_markdown,
)

NOTES = Path(__file__).resolve().parents[2] / "notes"
PDF_NOTE = NOTES / "15-prompt-engineering.pdf"

# --- Markdown and text ------------------------------------------------------------------------


def test_markdown_kept_as_is_but_line_breaks(tmp_path):
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
    assert doc.text == raw.replace("\r\n", "\n")
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
    assert doc.metadata["title"] == "looks like a heading"  # plain text follows Markdown's rules
    assert doc.text == "# looks like a heading\nbut this is text\n"
    untitled = tmp_path / "untitled.txt"
    untitled.write_text("first sentence of a memo.\n\nmore text\n", encoding="utf-8")
    assert read_document(untitled).metadata["title"] == "untitled"


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
        "Main heading\n"
        "First paragraph spread over two source lines.\n"
        "item one\n"
        "item two\n"
        "Deeper\n"
        "code line\n"
        "cell\n"
        "head\n"
    )
    assert doc.metadata["heading_levels"] == [[0, 1], [4, 3]]
    assert doc.metadata["kind"] == "html"
    assert doc.metadata["title"] == "Page Title"
    line_map = doc.metadata["line_map"]
    assert line_map == [9, 10, 13, 14, 16, 17, 18, 18]
    source = HTML.splitlines()
    for out_line, src_line in zip(doc.text.splitlines(), line_map, strict=True):
        first_word = out_line.split()[0]
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
    with pytest.raises(UnreadableFileError, match="no visible text"):
        read_document(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("emptied.html", "<html><body></body></html>"),
        ("emptied.htm", "<html><head><title>x</title></head><body> </body></html>"),
        ("emptied.md", "\n\n  \n"),
        ("emptied.txt", " \n"),
    ],
)
def test_a_note_with_no_text_is_empty_whatever_its_format(tmp_path, name, content):
    from ingest.readers import EmptyDocumentError

    path = tmp_path / name
    path.write_text(content, "utf-8")
    with pytest.raises(EmptyDocumentError):
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
    assert doc.metadata["heading_levels"] == [[0, 2]]
    assert doc.text.splitlines() == [
        "見出しです",
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


# --- encodings and line breaks ----------------------------------------------------------------

JA = "# 最尤推定\n\n尤度を最大にするパラメータを選ぶ。\n"


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-8"])
def test_byte_order_marks_decide_the_encoding(tmp_path, codec):
    import codecs

    bom = {
        "utf-16-le": codecs.BOM_UTF16_LE,
        "utf-16-be": codecs.BOM_UTF16_BE,
        "utf-32-le": codecs.BOM_UTF32_LE,
        "utf-32-be": codecs.BOM_UTF32_BE,
        "utf-8": codecs.BOM_UTF8,
    }[codec]
    path = tmp_path / "note.md"
    path.write_bytes(bom + JA.replace("\n", "\r\n").encode(codec))
    doc = read_document(path)
    assert doc.text == JA  # no BOM character, no CR
    assert doc.metadata["title"] == "最尤推定"
    assert doc.metadata["encoding"] == codec


def test_a_bom_with_invalid_text_is_refused_and_binary_stays_binary(tmp_path):
    with pytest.raises(UnreadableFileError, match="UTF-16 byte-order mark but is not valid"):
        decode(b"\xff\xfe" + "ok".encode("utf-16-le") + b"\x00\xdc")  # lone low surrogate
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    with pytest.raises(UnreadableFileError, match="binary"):
        decode(png)
    # a PNG renamed .txt: no BOM opens the UTF-16 path
    path = tmp_path / "image.txt"
    path.write_bytes(png)
    with pytest.raises(UnreadableFileError, match="binary"):
        read_document(path)


@pytest.mark.parametrize("codec", ["cp932", "euc_jp", "iso2022_jp"])
def test_japanese_legacy_encodings_are_detected(codec):
    text = (
        "日本語のノートです。文字コードを判定して読み込みます。\n"
        "ひらがなとカタカナ、漢字が混ざった普通の文章であれば、正しく判定できるはずです。\n"
    )
    decoded = decode(text.encode(codec))
    assert decoded.text == text
    assert decoded.warnings == []


def test_line_breaks_of_every_kind_become_lf():
    raw = "a\r\nb\rc\nd\r\n\re"
    assert decode(raw.encode()).text == "a\nb\nc\nd\n\ne"
    # only CR and LF break lines: these stay characters of their line
    odd = "x\u2028y\x0cz\x85w"
    assert decode(odd.encode()).text == odd


def test_mojibake_is_refused_not_indexed():
    rng = random.Random(7)
    junk = bytes(rng.randrange(0x80, 0x100) for _ in range(600))
    with pytest.raises(UnreadableFileError, match="save it as UTF-8"):
        decode(junk)


def test_an_unsure_guess_is_reported():
    # bytes that are kanji in Shift_JIS and other kanji in EUC-JP: no way to tell
    data = b"\xe0\xa1\xe0\xa1\xe9\xb0\xe3\xa2"
    assert data.decode("cp932") != data.decode("euc_jp")
    decoded = decode(data)
    assert decoded.text in {data.decode("cp932"), data.decode("euc_jp")}
    assert len(decoded.warnings) == 1
    assert "guessed as" in decoded.warnings[0] and "would also fit" in decoded.warnings[0]


# --- hidden HTML ------------------------------------------------------------------------------

HIDDEN_FORMS = [
    "<p hidden>HIDDEN</p>",
    '<p hidden="hidden">HIDDEN</p>',
    '<p style="display:none">HIDDEN</p>',
    '<p style="color: red; DISPLAY : NONE !important">HIDDEN</p>',
    "<div style='visibility: hidden'>HIDDEN</div>",
    '<p style="visibility:collapse">HIDDEN</p>',
    '<p aria-hidden="true">HIDDEN</p>',
    "<div hidden><p>nested <b>HIDDEN</b></p></div>",
    "<dialog><p>HIDDEN</p></dialog>",
    '<p class="gone">HIDDEN</p>',
    '<p id="nope">HIDDEN</p>',
    "<template><p>HIDDEN</p></template>",
]


@pytest.mark.parametrize("hidden", HIDDEN_FORMS)
def test_hidden_html_is_not_read(tmp_path, hidden):
    page = (
        "<html><head><style>.gone { display: none } #nope{visibility:hidden}"
        " @media print { .shown { display: none } } a:hover { display: none }</style></head>\n"
        "<body>\n<h1>Title</h1>\n<p>visible one</p>\n"
        f"{hidden}\n"
        '<p class="shown">visible two</p>\n<p aria-hidden="false">visible three</p>\n'
        '<p hidden="until-found">visible four</p>\n</body></html>\n'
    )
    path = tmp_path / "page.html"
    path.write_text(page, encoding="utf-8")
    doc = read_document(path)
    assert "HIDDEN" not in doc.text
    for shown in ("visible one", "visible two", "visible three", "visible four"):
        assert shown in doc.text
    # the line of the hidden element is never inside a cited range: a break before what follows
    assert doc.metadata["breaks"] == [2]


def test_open_dialog_is_read(tmp_path):
    path = tmp_path / "d.html"
    path.write_text("<body><dialog open><p>shown</p></dialog></body>", encoding="utf-8")
    assert "shown" in read_document(path).text


# --- encrypted PDF ----------------------------------------------------------------------------


def make_pdf(path: Path, lines: list[str], **encrypt: str) -> Path:
    import io

    import pypdf
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in lines:
        pdf.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    reader = pypdf.PdfReader(io.BytesIO(bytes(pdf.output())))
    writer = pypdf.PdfWriter(clone_from=reader)
    if encrypt:
        writer.encrypt(**encrypt)
    with path.open("wb") as fh:
        writer.write(fh)
    return path


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_pdf_with_an_empty_user_password_is_read(tmp_path, algorithm):
    path = make_pdf(
        tmp_path / "slides.pdf",
        ["Lecture slides", f"The prior is 0.01. Variant: {algorithm}"],
        user_password="",
        owner_password="owner-secret",
        algorithm=algorithm,
    )
    doc = read_document(path)
    assert f"Variant: {algorithm}" in doc.text and "0.01" in doc.text
    assert doc.metadata["page_starts"] == [0]


def test_password_locked_pdf_is_refused_in_plain_words(tmp_path):
    path = make_pdf(
        tmp_path / "locked.pdf",
        ["secret"],
        user_password="study-pass",
        owner_password="owner",
        algorithm="AES-128",
    )
    with pytest.raises(UnreadableFileError) as caught:
        read_document(path)
    message = str(caught.value)
    assert "encrypted with a password" in message
    assert "Error" not in message and "scanned" not in message


# --- PDF text that is garbage (issue 25, case 28) ---------------------------------------------


def _pdf(pages: list[tuple[bytes, bytes]]) -> bytes:
    """A minimal PDF: each page is (content stream, /Resources dictionary)."""
    import io

    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for content, resources in pages:
        kids.append(b"%d 0 R" % (len(objects) + 1))
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources "
            + resources
            + b" /Contents %d 0 R >>" % (len(objects) + 2)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects[1] = b"<< /Type /Pages /Kids [" + b" ".join(kids) + b"] /Count %d >>" % len(kids)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % off for off in offsets)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


HELVETICA = b"<< /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"
# a subset TrueType font with Identity-H and no /ToUnicode: its codes are glyph numbers
UNMAPPED = (
    b"<< /Font << /F2 << /Type /Font /Subtype /Type0 /BaseFont /ABCDEF+MS-Mincho "
    b"/Encoding /Identity-H /DescendantFonts [<< /Type /Font /Subtype /CIDFontType2 "
    b"/BaseFont /ABCDEF+MS-Mincho /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) "
    b"/Supplement 0 >> /CIDToGIDMap /Identity /DW 1000 >>] >> >> >>"
)


def _text_page(*lines: str) -> tuple[bytes, bytes]:
    body = b"".join(
        b"BT /F1 12 Tf 72 %d Td (%s) Tj ET\n" % (760 - 20 * n, line.encode("latin-1"))
        for n, line in enumerate(lines)
    )
    return body, HELVETICA


def _glyph_page(codes: list[int]) -> tuple[bytes, bytes]:
    hexed = b"".join(b"%04X" % c for c in codes)
    return b"BT /F2 12 Tf 72 760 Td <" + hexed + b"> Tj ET", UNMAPPED


CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.mark.parametrize(
    "codes",
    [
        [1, 2, 3, 4, 5, 6, 7, 8, 14, 15, 16, 2, 17],  # glyph numbers read as control characters
        [36, 37, 38, 39, 40, 41, 37, 42, 43, 44],  # … or as random letters ("EFGHIJFKLM")
    ],
)
def test_pdf_page_in_a_font_without_a_unicode_map_is_not_indexed_and_named(tmp_path, codes):
    path = tmp_path / "handout.pdf"
    path.write_bytes(_pdf([_text_page("Backpropagation computes gradients."), _glyph_page(codes)]))
    doc = read_document(path)
    assert "Backpropagation computes gradients." in doc.text
    assert not CONTROL.search(doc.text)
    assert doc.text.strip() == "Backpropagation computes gradients."
    (warning,) = doc.metadata["warnings"]
    assert warning.startswith("page 2: ")
    assert "Unicode map" in warning and "ABCDEF+MS-Mincho" in warning and "OCR" in warning


def test_pdf_whose_every_page_is_garbage_is_refused_saying_why(tmp_path):
    path = tmp_path / "all-garbage.pdf"
    path.write_bytes(_pdf([_glyph_page([1, 2, 3, 4, 5]), _glyph_page([6, 7, 8, 14])]))
    with pytest.raises(UnreadableFileError) as caught:
        read_document(path)
    assert "Unicode map" in str(caught.value) and "OCR" in str(caught.value)


def test_pdf_page_of_only_an_image_is_named(tmp_path):
    image = (
        b"<< /XObject << /Im1 << /Type /XObject /Subtype /Image /Width 1 /Height 1 "
        b"/ColorSpace /DeviceGray /BitsPerComponent 8 /Length 1 >> >> >>"
    )
    # (the image's stream is left out: only the page's resources are looked at)
    path = tmp_path / "scan.pdf"
    path.write_bytes(_pdf([_text_page("Typed page."), (b"q 100 0 0 100 0 0 cm Q", image)]))
    doc = read_document(path)
    assert doc.metadata["warnings"] == [
        "page 2: only images, no text (scanned?); not indexed (OCR would be needed to read it)"
    ]


def test_the_bundled_pdf_has_no_warnings():
    assert read_document(PDF_NOTE).metadata["warnings"] == []


@given(st.text(), st.lists(st.tuples(st.text(max_size=5), st.just("F")), max_size=3))
def test_clean_page_text_never_keeps_controls_and_keeps_the_line_count(raw, pieces):
    page = clean_page_text(raw, pieces)
    lines = normalise_newlines(raw.strip("\n")).split("\n")
    assert not CONTROL.search(page.text)
    assert page.text.count("\n") == len(lines) - 1
    for before, after in zip(lines, page.text.split("\n"), strict=True):
        assert after == "" or len(after) == len(before)
    assert 0 <= page.garbled <= page.lines


def test_clean_page_text_keeps_text_with_a_stray_control():
    page = clean_page_text("確率的勾配降下法\x02では学習率を小さくする。\n\x01\x02\x03\x04")
    assert page.text == "確率的勾配降下法 では学習率を小さくする。\n"
    assert (page.garbled, page.lines) == (1, 2)


# PDF text is what the fonts map, not a legacy encoding read wrong: half-width katakana, box
# drawing and other symbols that correct extraction yields are text (review of issue 25)
_PDF_TEXT = st.text(
    st.sampled_from(
        [chr(c) for c in range(0xFF61, 0xFFA0)]  # half-width katakana
        + [chr(c) for c in range(0x2500, 0x25A0)]  # box drawing, blocks
        + list("概論計算機科学 ab12|")
    ),
    min_size=1,
)


@given(st.lists(_PDF_TEXT, min_size=1, max_size=5))
def test_clean_page_text_keeps_half_width_katakana_and_box_drawing(lines):
    raw = "\n".join(line for line in lines if line.strip()) or "ｱ"
    page = clean_page_text(raw)
    assert page.garbled == 0 and page.text == raw


def test_clean_page_text_keeps_a_box_drawn_table():
    raw = "ｺﾝﾋﾟｭｰﾀｰｻｲｴﾝｽ概論\n┌──┬──┐\n│ａ│ｂ│\n└──┴──┘"
    assert clean_page_text(raw).text == raw
    assert clean_page_text("\ue000\ue001\ufffd\x85").garbled == 1  # still garbage


# --- encoded data in notes (issue 25, case 25) ------------------------------------------------


def test_markdown_with_a_pasted_image_warns_that_it_is_left_out(tmp_path):
    import base64

    payload = base64.b64encode(random.Random(5).randbytes(3000)).decode()
    path = tmp_path / "figure.md"
    path.write_text(f"# 図\n\n![曲線](data:image/png;base64,{payload})\n", encoding="utf-8")
    (warning,) = read_document(path).metadata["warnings"]
    assert "line 3" in warning and "data: URI" in warning and "alt text" in warning


# --- PDF fonts without a Unicode map (review of issue 25) --------------------------------------


class _Ref:
    """An indirect reference, as pypdf's ``dict.get`` returns it (not resolved)."""

    def __init__(self, value):
        self.value = value

    def get_object(self):
        return self.value


def _font(subtype, encoding=None, to_unicode=False):
    from pypdf.generic import DictionaryObject, NameObject

    font = DictionaryObject({NameObject("/Subtype"): NameObject(subtype)})
    if encoding is not None:  # (dict's own setter: pypdf's refuses a stand-in reference)
        dict.__setitem__(font, NameObject("/Encoding"), encoding)
    if to_unicode:
        font[NameObject("/ToUnicode")] = NameObject("/Stream")
    return font


def test_an_indirect_identity_encoding_is_unmapped():
    from pypdf.generic import NameObject

    from ingest.readers import _unmapped

    assert _unmapped(_font("/Type0", _Ref(NameObject("/Identity-H"))), "abc")
    assert not _unmapped(_font("/Type0", _Ref(NameObject("/Identity-H")), to_unicode=True))


@given(st.lists(st.integers(1, 255), min_size=4, max_size=30))
def test_simple_fonts_without_a_map_show_glyph_names_or_punctuation(codes):
    from pypdf.generic import ArrayObject, DictionaryObject, NameObject

    from ingest.readers import _unmapped

    names = "".join(f"/g{c}" for c in codes)
    punctuation = "".join(chr(0x21 + c % 15) for c in codes)  # ! " # … /
    differences = DictionaryObject({NameObject("/Differences"): ArrayObject()})
    for font in (
        _font("/TrueType"),
        _font("/Type1", differences),
        _font("/Type1", _Ref(differences)),
    ):
        assert _unmapped(font, names) and _unmapped(font, punctuation)
        assert not _unmapped(font, "Backpropagation computes the gradient.")
        assert not _unmapped(font, "誤差逆伝播法")
    standard = _font("/TrueType", NameObject("/WinAnsiEncoding"))
    assert not _unmapped(standard, punctuation) and not _unmapped(standard, names)
    assert not _unmapped(_font("/TrueType", to_unicode=True), names)
