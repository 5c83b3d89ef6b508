"""Files → LlamaIndex Documents whose text keeps a map back to the file's own lines.

Citations point at lines of the original note, so readers must not rewrite text freely:
Markdown and plain text are kept byte-for-byte (decoded), HTML becomes one line per block
element with headings turned into Markdown headings (each line remembers its source line), and a
PDF becomes its pages' text (lines counted in the extracted text, pages remembered).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from llama_index.core import Document
from llama_index.core.readers.base import BaseReader

MARKDOWN = {".md", ".markdown", ".mdown", ".mkd"}
TEXT = {".txt", ".text", ".rst"}
HTML = {".html", ".htm", ".xhtml"}
PDF = {".pdf"}
SUPPORTED = MARKDOWN | TEXT | HTML | PDF


class UnreadableFileError(ValueError):
    """A file that cannot be turned into text; the message says why, the ingest goes on."""


def decode(data: bytes, path: Path) -> str:
    """UTF-8 (with or without BOM) first; otherwise a detected Japanese/legacy encoding."""
    if b"\x00" in data[:8192]:
        raise UnreadableFileError("looks binary (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise UnreadableFileError("not valid UTF-8 and no other text encoding fits")
    return str(best)


def title_from_markdown(text: str, fallback: str) -> str:
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence else re.match(r"^#\s+(.+?)\s*#*\s*$", line)
        if match:
            return match.group(1).strip()
    return fallback


def _metadata(path: Path, kind: str, title: str, **extra: Any) -> dict[str, Any]:
    return {"path": str(path), "kind": kind, "title": title, **extra}


class MarkdownTextReader(BaseReader):
    """Markdown and plain text, unchanged, so line numbers are the file's."""

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[Document]:
        text = decode(file.read_bytes(), file)
        kind = "markdown" if file.suffix.lower() in MARKDOWN else "text"
        title = title_from_markdown(text, file.stem) if kind == "markdown" else file.stem
        return [Document(text=text, metadata=_metadata(file, kind, title, **(extra_info or {})))]


_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
# Elements that start a new line of text. Text is grouped by its nearest such ancestor, so text
# written straight into a <div> or <body> is kept, and nested blocks are not repeated.
_BLOCKS = _HEADINGS | {
    "p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption", "caption", "div",
    "section", "article", "main", "header", "footer", "aside", "nav", "body", "html", "ul",
    "ol", "dl", "table", "tr", "form", "fieldset", "details", "summary", "address", "br",
}  # fmt: skip
_SKIP = {"script", "style", "noscript", "template", "head"}


class HtmlReader(BaseReader):
    """HTML → one text line per block of text; h1–h6 become '#' headings for the chunker."""

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[Document]:
        from bs4 import BeautifulSoup, NavigableString, Tag

        html = decode(file.read_bytes(), file)
        soup = BeautifulSoup(html, "html.parser")
        title_tag = soup.find("title")
        title = title_tag.get_text(strip=True) if title_tag else ""
        for tag in soup(list(_SKIP)):
            tag.decompose()
        lines: list[str] = []
        line_map: list[int] = []
        current: Tag | None = None
        parts: list[str] = []

        def flush() -> None:
            text = " ".join(" ".join(parts).split())
            if text and current is not None:
                if current.name in _HEADINGS:
                    text = "#" * int(current.name[1]) + " " + text
                lines.append(text)
                line_map.append(int(current.sourceline or 1))
            parts.clear()

        for string in soup.find_all(string=True):
            if not isinstance(string, NavigableString) or type(string) is not NavigableString:
                continue  # comments, doctype, CDATA
            if not string.strip():
                continue
            block = next((p for p in string.parents if p.name in _BLOCKS), None)
            if block is not current:
                flush()
                current = block
            parts.append(str(string))
        flush()
        if not lines:
            raise UnreadableFileError("no text found in the HTML")
        text = "\n".join(lines) + "\n"
        title = title or title_from_markdown(text, file.stem)
        meta = _metadata(file, "html", title, line_map=line_map, **(extra_info or {}))
        return [Document(text=text, metadata=meta)]


class PdfReader(BaseReader):
    """PDF pages through LlamaIndex's PDFReader, joined; each chunk will know its page."""

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[Document]:
        from llama_index.readers.file import PDFReader

        try:
            pages = PDFReader(return_full_document=False).load_data(file)
        except Exception as exc:  # pypdf raises many kinds for damaged files
            raise UnreadableFileError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
        texts = [p.text.strip("\n") for p in pages]
        if not any(t.strip() for t in texts):
            raise UnreadableFileError("the PDF has no extractable text (scanned images?)")
        page_starts: list[int] = []
        parts: list[str] = []
        offset = 0
        for text in texts:
            page_starts.append(offset)
            parts.append(text + "\n\n")
            offset += len(text) + 2
        text = "".join(parts)
        first_line = next((ln.strip() for ln in text.splitlines() if ln.strip()), file.stem)
        meta = _metadata(file, "pdf", first_line[:120], page_starts=page_starts)
        meta.update(extra_info or {})
        return [Document(text=text, metadata=meta)]


def reader_for(path: Path) -> BaseReader | None:
    suffix = path.suffix.lower()
    if suffix in MARKDOWN or suffix in TEXT:
        return MarkdownTextReader()
    if suffix in HTML:
        return HtmlReader()
    if suffix in PDF:
        return PdfReader()
    return None


def read_document(path: Path) -> Document:
    """Read one supported file; raises UnreadableFileError with a reason a person can act on."""
    reader = reader_for(path)
    if reader is None:
        raise UnreadableFileError(f"unsupported file type '{path.suffix or path.name}'")
    try:
        docs = reader.load_data(path)
    except UnreadableFileError:
        raise
    except OSError as exc:
        raise UnreadableFileError(f"cannot read: {exc.strerror or exc}") from exc
    if not docs or not docs[0].text.strip():
        raise UnreadableFileError("empty: no text to index")
    return docs[0]
