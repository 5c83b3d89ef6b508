"""Files → LlamaIndex Documents whose text keeps a map back to the file's own lines.

Citations point at lines of the original note, so readers do not rewrite text freely. The one
normalisation (the *document text*): bytes decoded (a byte-order mark removed) and every line
break — LF, CRLF or a lone CR, as any editor writes them, mixed or not — written as LF. Line
*n* of the document text is line *n* of the file as an editor shows it; nothing else changes.
Other characters Python would split lines at (U+2028, U+0085, form feed …) are not line breaks
here, as in editors.

- Markdown and plain text: the document text. Title, tags and aliases come from the front matter
  and the headings (`ingest.structure`); the chunker leaves the front matter out.
- HTML: one line per visible block element (hidden elements dropped), each line remembering its
  source line (``line_map``), headings and their levels remembered (``heading_levels``).
- PDF: its pages' text (lines counted in the extracted text, pages remembered); encrypted files
  with an empty user password are read, password-locked ones are refused as such. Extracted text
  that is garbage — text shown in a font without a Unicode map (glyph numbers come out as
  control characters or random letters), or lines of implausible characters — is blanked
  (line numbers unchanged) and the report names the file's pages and why (OCR would be needed);
  pages that are only images are named too. A PDF with no readable page is refused.
- Encoded data that is not text (images pasted as ``data:`` URIs, base64 runs) is never indexed
  (`ingest.structure.non_text_runs`); the report says what was left out.

Encodings: UTF-8 with or without BOM, UTF-16 and UTF-32 with BOM, and Shift_JIS/CP932, EUC-JP,
ISO-2022-JP or another legacy encoding when no UTF fits. A legacy decoding is chosen by how
plausible its text is; when two candidates fit about equally the reader says so (a warning in the
ingest report), and when none decodes to plausible text the file is refused, never indexed as
mojibake.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llama_index.core import Document
from llama_index.core.readers.base import BaseReader

from ingest.hidden import hidden_selectors, is_hidden
from ingest.structure import markdown_layout, non_text_runs, non_text_warning

MARKDOWN = {".md", ".markdown", ".mdown", ".mkd"}
TEXT = {".txt", ".text", ".rst"}
HTML = {".html", ".htm", ".xhtml"}
PDF = {".pdf"}
SUPPORTED = MARKDOWN | TEXT | HTML | PDF


class UnreadableFileError(ValueError):
    """A file that cannot be turned into text; the message says why, the ingest goes on."""


class EmptyDocumentError(UnreadableFileError):
    """A file that reads fine but has no text to index (blank, only markup or front matter):
    the author's choice, a warning rather than a failure. Every reader raises this one for it."""


# --- decoding ---------------------------------------------------------------------------------

# UTF-32-LE's mark starts with UTF-16-LE's: the longer marks are tried first.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)
# Legacy encodings Japanese tools write; charset-normalizer adds its own best guess (Western
# and others) to these.
_LEGACY = ("cp932", "euc_jp", "iso2022_jp")
_MAX_ODD = 0.02  # above this share of implausible characters a decoding is mojibake
_CLOSE = 0.005  # two decodings this close in oddness are a guess between them


@dataclass
class Decoded:
    text: str  # LF line breaks only
    encoding: str
    warnings: list[str] = field(default_factory=list)


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR → LF (the documented normalisation of the document text)."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _odd(ch: str) -> bool:
    """Characters that real notes hardly contain but mojibake is full of."""
    code = ord(ch)
    if code < 0x80:
        return code < 0x20 and ch not in "\t\n\r\f"
    if 0xFF61 <= code <= 0xFF9F:  # half-width katakana: EUC-JP bytes read as Shift_JIS
        return True
    category = unicodedata.category(ch)
    # controls (C1 from Latin-1 readings), unassigned, private use, surrogates; the
    # replacement character; box drawing and symbols that mis-decodings scatter
    return category in ("Cc", "Cn", "Co", "Cs") or ch == "\ufffd" or 0x2500 <= code <= 0x259F


def _garbled_char(ch: str) -> bool:
    """A character no correct PDF text extraction yields: C0/C1 controls but tab and line feed,
    unassigned code points, private use, surrogates, U+FFFD. Unlike `_odd` (written for legacy
    encodings read wrong), half-width katakana and box drawing are real text in a PDF."""
    if ch in "\t\n":
        return False
    return unicodedata.category(ch) in ("Cc", "Cn", "Co", "Cs") or ch == "\ufffd"


def oddness(text: str) -> float:
    """Share of implausible characters (0 = clean text)."""
    if not text:
        return 0.0
    return sum(1 for ch in text if _odd(ch)) / len(text)


def decode(data: bytes, path: Path | None = None) -> Decoded:
    """Bytes → text with LF line breaks; raises UnreadableFileError saying why not.

    Order: a byte-order mark decides (UTF-8/16/32; the mark is dropped); NUL bytes without
    one mean binary; then strict UTF-8; then the most plausible legacy decoding."""
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:
                text = data[len(bom) :].decode(codec)
            except UnicodeDecodeError as exc:
                raise UnreadableFileError(
                    f"starts with a {name} byte-order mark but is not valid {name} "
                    f"(byte {exc.start + len(bom)})"
                ) from exc
            if "\x00" in text:
                raise UnreadableFileError(f"{name} text with NUL characters: looks binary")
            return Decoded(normalise_newlines(text), codec)
    if b"\x00" in data[:8192]:
        raise UnreadableFileError("looks binary (NUL bytes), not text")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return _decode_legacy(data)
    if "\x1b$" in text or "\x1b(" in text:  # ISO-2022-JP is 7-bit: valid UTF-8 as well
        try:
            return Decoded(normalise_newlines(data.decode("iso2022_jp")), "iso2022_jp")
        except UnicodeDecodeError:
            pass
    return Decoded(normalise_newlines(text), "utf-8")


def _candidates(data: bytes) -> Iterable[tuple[str, str]]:
    from charset_normalizer import from_bytes

    names = list(_LEGACY)
    best = from_bytes(data).best()
    if (
        best is not None
        and best.encoding
        and codecs.lookup(best.encoding).name not in {codecs.lookup(n).name for n in names}
    ):
        names.append(best.encoding)
    for name in names:
        try:
            yield name, data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue


def _decode_legacy(data: bytes) -> Decoded:
    scored = sorted(((oddness(t), n, t) for n, t in _candidates(data)), key=lambda x: x[0])
    if not scored or scored[0][0] > _MAX_ODD:
        guess = f" (the closest, {scored[0][1]}, gives garbled text)" if scored else ""
        raise UnreadableFileError(
            "not valid UTF-8, and no Japanese or other known encoding decodes it to clean "
            f"text{guess}; save it as UTF-8 and ingest again"
        )
    odd, name, text = scored[0]
    warnings = [
        f"text encoding guessed as {name}; {other} would also fit and reads differently: "
        "check this note's passages, or save it as UTF-8"
        for other_odd, other, other_text in scored[1:]
        if other_odd - odd <= _CLOSE and normalise_newlines(other_text) != normalise_newlines(text)
    ][:1]
    return Decoded(normalise_newlines(text), name, warnings)


def title_from_markdown(text: str, fallback: str) -> str:
    """Front matter ``title``, else the first top-level H1 (ATX or setext), else ``fallback``."""
    return markdown_layout(normalise_newlines(text)).title or fallback


def _metadata(path: Path, kind: str, title: str, **extra: Any) -> dict[str, Any]:
    return {"path": str(path), "kind": kind, "title": title, **extra}


class MarkdownTextReader(BaseReader):
    """Markdown and plain text: the document text, so line numbers are the file's."""

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[Document]:
        decoded = decode(file.read_bytes(), file)
        kind = "markdown" if file.suffix.lower() in MARKDOWN else "text"
        layout = markdown_layout(decoded.text, kind == "text")
        meta = _metadata(
            file,
            kind,
            layout.title or file.stem,
            tags=layout.tags,
            aliases=layout.aliases,
            layout=kind,
            encoding=decoded.encoding,
            warnings=decoded.warnings + layout.warnings,
            **(extra_info or {}),
        )
        return [Document(text=decoded.text, metadata=meta)]


_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
# Elements that start a new line of text. Text is grouped by its nearest such ancestor, so text
# written straight into a <div> or <body> is kept, and nested blocks are not repeated.
_BLOCKS = _HEADINGS | {
    "p",
    "li",
    "pre",
    "blockquote",
    "td",
    "th",
    "dt",
    "dd",
    "figcaption",
    "caption",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "nav",
    "body",
    "html",
    "ul",
    "ol",
    "dl",
    "table",
    "tr",
    "form",
    "fieldset",
    "details",
    "summary",
    "address",
    "br",
}
# Never rendered as text: code, styles, templates, the head.
_SKIP = {"script", "style", "noscript", "template", "head", "svg", "math"}


def visible_soup(html: str) -> tuple[Any, str, list[int]]:
    """The page parsed, with everything a browser would not show removed; its <title>; and the
    source lines where hidden elements began (no citation may span them)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(strip=True) if title_tag else ""
    sheets = [s.get_text() for s in soup.find_all("style")]
    doomed = soup(list(_SKIP))
    doomed.extend(t for t in soup.find_all(True) if t.name not in _SKIP and is_hidden(t))
    for selector in hidden_selectors(sheets):
        try:
            doomed.extend(soup.select(selector))
        except Exception:  # a selector soupsieve does not know: leave it
            continue
    hidden_lines = sorted({int(t.sourceline) for t in doomed if t.sourceline is not None})
    for tag in doomed:
        if not tag.decomposed:
            tag.decompose()
    return soup, title, hidden_lines


class HtmlReader(BaseReader):
    """HTML → one text line per visible block of text; h1–h6 remembered with their levels."""

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[Document]:
        from bs4 import NavigableString, Tag

        decoded = decode(file.read_bytes(), file)
        soup, title, hidden_lines = visible_soup(decoded.text)
        lines: list[str] = []
        line_map: list[int] = []
        heading_levels: list[list[int]] = []  # [line (0-based), level]
        current: Tag | None = None
        parts: list[str] = []

        def flush() -> None:
            text = " ".join(" ".join(parts).split())
            if text and current is not None:
                if current.name in _HEADINGS:
                    heading_levels.append([len(lines), int(current.name[1])])
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
            raise EmptyDocumentError("empty: no visible text found in the HTML")
        text = "\n".join(lines) + "\n"
        # a document line after which hidden content was dropped: no chunk spans that gap
        breaks = [
            k
            for k in range(1, len(lines))
            if any(line_map[k - 1] < h < line_map[k] for h in hidden_lines)
        ]
        h1 = next((lines[n] for n, level in heading_levels if level == 1), "")
        meta = _metadata(
            file,
            "html",
            title or h1 or file.stem,
            line_map=line_map,
            heading_levels=heading_levels,
            breaks=breaks,
            layout="lines",
            encoding=decoded.encoding,
            warnings=decoded.warnings + _non_text_warnings(text),
            **(extra_info or {}),
        )
        return [Document(text=text, metadata=meta)]


def _non_text_warnings(text: str) -> list[str]:
    warning = non_text_warning(non_text_runs(text))
    return [warning] if warning else []


# C0 controls but tab and line feed, DEL and C1 controls: never text in a PDF's extracted text
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_GARBLED_LINE = 0.3  # a line with this share of implausible characters is garbage
_UNMAPPED_LINE = 0.5  # ... or with this share of its characters from a font without a map


_STANDARD_ENCODINGS = (
    "/WinAnsiEncoding",
    "/MacRomanEncoding",
    "/StandardEncoding",
    "/MacExpertEncoding",
    "/PDFDocEncoding",
)
# what pypdf makes of the codes of a simple font it has no map for: glyph names (/g33/g34 …)
_GLYPH_NAMES = re.compile(r"(?:\s*/[A-Za-z._]*[0-9]+)+\s*")


def _resolved(value: Any) -> Any:
    return value.get_object() if hasattr(value, "get_object") else value


def _glyph_codes(text: str) -> bool:
    """Text that is glyph numbers, not words: glyph names, or a run of punctuation and symbols
    without a letter (codes 0x21… read as ASCII: ``!"#$%&'()*+``)."""
    shown = [c for c in text if not c.isspace()]
    if len(shown) < 4 or any(c.isalpha() for c in shown):
        return bool(_GLYPH_NAMES.fullmatch(text)) if len(shown) >= 4 else False
    marks = sum(1 for c in shown if unicodedata.category(c)[0] in "PS")
    return marks >= 0.6 * len(shown)


def _unmapped(font: Any, text: str = "") -> bool:
    """A font whose codes are glyph numbers and that has no /ToUnicode map, so what its
    ``text`` means cannot be recovered from the file (only OCR can read it): a composite font
    with Identity-H/V, or a simple font (TrueType, Type1) with no standard encoding whose text
    reads as glyph names or punctuation runs (`_glyph_codes`)."""
    try:
        font = _resolved(font)
        if "/ToUnicode" in font:
            return False
        subtype = _resolved(font.get("/Subtype"))
        encoding = _resolved(font.get("/Encoding"))
        if subtype == "/Type0":
            return isinstance(encoding, str) and encoding in ("/Identity-H", "/Identity-V")
        if subtype not in ("/TrueType", "/Type1", "/MMType1"):
            return False
        if isinstance(encoding, dict):
            encoding = _resolved(encoding.get("/BaseEncoding"))
        if isinstance(encoding, str) and encoding in _STANDARD_ENCODINGS:
            return False
        return _glyph_codes(text)
    except Exception:  # a damaged font dictionary: judged by its text alone
        return False


@dataclass
class PdfPage:
    """One page's extracted text after the garbage check."""

    text: str  # LF line breaks; garbage lines blanked, stray controls replaced by spaces
    had_text: bool  # the extractor returned any non-blank text
    garbled: int  # lines blanked as garbage
    lines: int  # non-blank lines before the check
    fonts: list[str] = field(default_factory=list)  # unmapped fonts whose text was blanked
    images_only: bool = False  # no text at all, but images: a scan or a picture


def clean_page_text(raw: str, unmapped: Sequence[tuple[str, str]] = ()) -> PdfPage:
    """One page's extracted text with its garbage blanked (a pure function of the text).

    ``unmapped``: (text, font name) pieces the page shows in fonts without a Unicode map. A line
    is garbage when at least half of its characters come from such pieces or when 30% of them
    are implausible (`_garbled_char`: controls, unassigned, private use …); it becomes an empty
    line, so the page keeps its line count. Elsewhere control characters become spaces (same
    offsets). The result's text has LF line breaks and no control character but tab and line
    feed."""
    lines = normalise_newlines(raw.strip("\n")).split("\n")
    out: list[str] = []
    garbled, total = 0, 0
    fonts: set[str] = set()
    for line in lines:
        shown = [c for c in line if not c.isspace()]
        if not shown:
            out.append("")
            continue
        total += 1
        covered = [False] * len(line)
        used: set[str] = set()
        for piece, font in unmapped:
            start = line.find(piece) if piece else -1
            while start >= 0:
                covered[start : start + len(piece)] = [True] * len(piece)
                used.add(font)
                start = line.find(piece, start + 1)
        from_unmapped = sum(
            1 for c, hit in zip(line, covered, strict=True) if hit and not c.isspace()
        )
        odd = sum(1 for c in shown if _garbled_char(c))
        if from_unmapped >= _UNMAPPED_LINE * len(shown) or odd >= _GARBLED_LINE * len(shown):
            out.append("")  # blanked, not removed: line numbers stay those of the page's text
            garbled += 1
            fonts |= used
        else:
            # a stray control among real text (a ligature the font does not map): a space,
            # so no chunk carries control characters and offsets do not move
            out.append(_CONTROLS.sub(" ", line))
    return PdfPage("\n".join(out), bool(total), garbled, total, sorted(fonts))


def _check_page(page: Any) -> PdfPage:
    """Extract one pypdf page's text and blank what is garbage (`clean_page_text`), noting a
    page that is only images; raises what pypdf raises."""
    pieces: list[tuple[str, str]] = []  # text shown in an unmapped font, and the font's name

    def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        if text.strip() and font is not None and _unmapped(font, text):
            pieces.append((text.strip(), str(font.get("/BaseFont", "?")).lstrip("/")))

    raw = page.extract_text(visitor_text=visit) or ""
    result = clean_page_text(raw, pieces)
    if not result.had_text:
        try:
            xobjects: Any = page["/Resources"].get_object().get("/XObject")
            result.images_only = xobjects is not None and any(
                x.get_object().get("/Subtype") == "/Image" for x in xobjects.get_object().values()
            )
        except Exception:  # no resources, or damaged ones: not worth a warning of its own
            result.images_only = False
    return result


def _pages(numbers: list[int]) -> str:
    """[2, 3, 4, 7] → "pages 2–4, 7"; [2] → "page 2"."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    shown = ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)
    return f"page {shown}" if len(numbers) == 1 else f"pages {shown}"


def _pdf_warnings(pages: list[PdfPage]) -> list[str]:
    """What the report says about pages that could not be read well (1-based page numbers)."""
    warnings: list[str] = []
    lost = [n for n, p in enumerate(pages, 1) if p.garbled and p.garbled == p.lines]
    partly = [n for n, p in enumerate(pages, 1) if p.garbled and p.garbled < p.lines]
    fonts = sorted({f for p in pages if p.garbled for f in p.fonts})
    why = (
        f"its font has no Unicode map ({', '.join(fonts[:3])}), so the extracted characters are "
        "glyph numbers (control characters or random letters)"
        if fonts
        else "the extracted text is garbled (control or unassigned characters)"
    )
    if lost:
        warnings.append(
            f"{_pages(lost)}: the text cannot be extracted: {why}; not indexed (OCR would be "
            "needed to read it)"
        )
    if partly:
        warnings.append(
            f"{_pages(partly)}: some lines cannot be extracted: {why}; those lines are not "
            "indexed (OCR would be needed to read them)"
        )
    scans = [n for n, p in enumerate(pages, 1) if p.images_only]
    if scans:
        warnings.append(
            f"{_pages(scans)}: only images, no text (scanned?); not indexed (OCR would be "
            "needed to read it)"
        )
    return warnings


class PdfReader(BaseReader):
    """PDF pages' text (pypdf, as LlamaIndex's PDFReader extracts it), joined; each chunk will
    know its page. Encryption with an empty user password (the usual "no copying" PDFs; RC4 or
    AES, the latter through the `cryptography` package) is opened like a viewer opens it.

    Garbage is checked page by page (`_check_page`): it is blanked and named in the document's
    ``warnings``; raises UnreadableFileError when no page has readable text."""

    def load_data(self, file: Path, extra_info: dict[str, Any] | None = None) -> list[Document]:
        import pypdf
        from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError

        try:
            pdf = pypdf.PdfReader(file)
            if pdf.is_encrypted and pdf.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
                raise UnreadableFileError(
                    "the PDF is encrypted with a password (it opens only with that password); "
                    "save a copy without the password to ingest it"
                )
            pages = [_check_page(page) for page in pdf.pages]
        except UnreadableFileError:
            raise
        except FileNotDecryptedError as exc:
            raise UnreadableFileError("the PDF is encrypted with a password") from exc
        except DependencyError as exc:  # AES without a crypto library (a broken install)
            raise UnreadableFileError(
                "the PDF is AES-encrypted and this installation cannot decrypt it "
                "(the 'cryptography' package is missing: reinstall Shiori)"
            ) from exc
        except (PdfReadError, ValueError, KeyError, TypeError, IndexError, OSError) as exc:
            raise UnreadableFileError(
                f"not a readable PDF (damaged or not a PDF: {str(exc) or 'no detail'})"
            ) from exc
        texts = [p.text for p in pages]
        warnings = _pdf_warnings(pages)
        if not any(t.strip() for t in texts):
            if any(p.had_text for p in pages):
                raise UnreadableFileError(
                    "no page's text can be extracted: "
                    + "; ".join(w.split(": ", 1)[1] for w in warnings[:1])
                )
            raise UnreadableFileError("the PDF has no extractable text (scanned images?)")
        page_starts: list[int] = []
        parts: list[str] = []
        offset = 0
        for text in texts:
            page_starts.append(offset)
            parts.append(text + "\n\n")
            offset += len(text) + 2
        text = "".join(parts)
        first_line = next((ln.strip() for ln in text.split("\n") if ln.strip()), file.stem)
        meta = _metadata(
            file,
            "pdf",
            first_line[:120],
            page_starts=page_starts,
            layout="paragraphs",
            warnings=warnings + _non_text_warnings(text),
        )
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
        raise EmptyDocumentError("empty: no text to index")
    return docs[0]
