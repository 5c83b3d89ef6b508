"""A note's block structure, from a CommonMark parser: headings, text, code, tables, skipped parts.

Markdown (and plain text, which follows the same conventions) is parsed by markdown-it-py with
GFM tables, footnotes (``[^id]: text``, GFM/Obsidian/Pandoc, through mdit-py-plugins' footnote
plugin, definitions kept where they are written) and front matter (YAML ``---`` through
mdit-py-plugins, TOML ``+++`` through a rule of the same shape here). Its token line maps say
which lines each block covers, so the chunker never guesses structure from line patterns: fences
of any length and character, setext headings, indented code, HTML blocks and tables are what
CommonMark says they are.

The result is a `Layout`: blocks in document order with 0-based, end-exclusive line ranges of the
document text, plus what the front matter says (title, tags, aliases). Blank lines belong to no
block. Lines the reader must not index (front matter, HTML comments, hidden HTML blocks) are
``skip`` blocks: the chunker never lets a chunk span them.

Runs that are not text (`non_text_runs`: base64 payloads, above all images pasted as ``data:``
URIs) are character ranges of the layout (``Layout.non_text``): never indexed, never spanned by
a chunk, and named in the layout's warnings.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.token import Token
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.front_matter import front_matter_plugin

from ingest.hidden import hidden_html_block

HEADING = "heading"
TEXT = "text"  # prose: split into sentences
CODE = "code"  # fenced or indented code: split only between lines
TABLE_HEAD = "table_head"  # a table's header row and delimiter row
TABLE_ROW = "table_row"
SKIP = "skip"  # not indexed, and no chunk spans it


@dataclass(frozen=True)
class Block:
    kind: str
    start: int  # first line, 0-based
    end: int  # line after the last one
    level: int = 0  # heading level 1–6
    title: str = ""  # heading text, as plain text
    table: int = -1  # which table a TABLE_HEAD / TABLE_ROW belongs to
    # a footnote definition's text: the heading path where the note first refers to it (its
    # context: "出典は…2017年" belongs to the section whose sentence carries [^vaswani]); None:
    # the path in force where the block is written
    headings: tuple[str, ...] | None = None


@dataclass(frozen=True)
class NonText:
    """A run of the document text that is not text (encoded data): ``text[start:end]``."""

    start: int  # offsets into the document text, end exclusive
    end: int
    line: int  # 1-based line where it starts
    kind: str  # IMAGE (a data: URI) or ENCODED (a bare base64/hex run)


IMAGE = "image"
ENCODED = "encoded"


@dataclass
class Layout:
    blocks: list[Block]
    title: str = ""  # front matter `title`, else the first top-level H1, else ""
    tags: list[str] = field(default_factory=list)  # front matter `tags` and inline #tags
    aliases: list[str] = field(default_factory=list)  # front matter `aliases` / `alias`
    warnings: list[str] = field(default_factory=list)  # e.g. front matter that does not parse
    non_text: list[NonText] = field(default_factory=list)  # in order, never overlapping


# --- Obsidian syntax: [[target|label]] links and #tags -----------------------------------------

_WIKILINK = re.compile(r"!?\[\[([^\[\]|\n]+?)(?:\|([^\[\]\n]+?))?\]\]")
# A tag is `#` after a line start or whitespace, then word characters, `-`, `_` or `/` (letters of
# any script; Obsidian's rule), not only digits ("#1" is a number, not a tag).
_TAG = re.compile(r"(?<![^\s(（])#([^\s#!-,.:-@\[-^`{-~、。，．！？「」『』（）【】]+)")


def readable(text: str) -> str:
    """Text as a reader sees it: ``[[target|label]]`` → ``label``, ``[[target#part]]`` →
    ``target part``. Used for the embedded and keyword-matched text, never for citations."""

    def label(m: re.Match[str]) -> str:
        return (m.group(2) or m.group(1).replace("#", " ")).strip()

    return _WIKILINK.sub(label, text) if "[[" in text else text


def inline_tags(text: str) -> list[str]:
    return [t for t in _TAG.findall(text) if not t.isdigit()]


def _as_list(value: Any) -> list[str]:
    """A front matter value written as a list, or as one string of comma/space-separated items."""
    if value is None:
        return []
    if isinstance(value, str):
        items = re.split(r"[,\s]+", value)
    elif isinstance(value, list | tuple | set):
        items = [str(v) for v in value if v is not None]
    else:
        items = [str(value)]
    return [i.strip().lstrip("#").strip() for i in items if i.strip().lstrip("#").strip()]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- parser -----------------------------------------------------------------------------------


def _toml_front_matter(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """``+++`` … ``+++`` at the very top (Hugo, Zola): TOML front matter."""
    if start != 0 or not state.src.startswith("+++"):
        return False
    if state.src[state.bMarks[0] : state.eMarks[0]].rstrip() != "+++":
        return False
    line = 1
    while line < end:
        if state.src[state.bMarks[line] : state.eMarks[line]].rstrip() == "+++":
            break
        line += 1
    else:
        return False  # not closed: not front matter
    if silent:
        return True
    token = state.push("front_matter", "", 0)
    token.hidden = True
    token.markup = "+++"
    token.block = True
    token.content = state.src[state.bMarks[1] : state.bMarks[line]] if line > 1 else ""
    token.map = [0, line + 1]
    state.line = line + 1
    return True


def _parser(front_matter: bool = True) -> MarkdownIt:
    # Footnote definitions are not CommonMark: without the plugin a one-line definition whose
    # text has no space (Japanese) is a link reference definition, which yields no token, so the
    # footnote would never be indexed. move_to_end=False keeps each definition's tokens where it
    # is written, so it belongs to the section around it (and unreferenced definitions, which
    # the plugin's tail rule would drop, are kept).
    md = MarkdownIt("commonmark").enable("table").use(footnote_plugin, move_to_end=False)
    if front_matter:
        md.use(front_matter_plugin)
        md.block.ruler.before(
            "front_matter", "toml_front_matter", _toml_front_matter, {"alt": ["paragraph"]}
        )
    return md


_MD = _parser()
_MD_PLAIN = _parser(front_matter=False)  # when the top is no front matter after all


def plain(inline: Token) -> str:
    """The plain text of an inline token: emphasis, links and code marks dropped."""
    parts: list[str] = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(plain(child))
    return readable(" ".join("".join(parts).split()))


def _front_matter_data(token: Token) -> tuple[dict[str, Any] | None, str]:
    """The front matter as a mapping, or None and why not (``""``: it is no mapping at all)."""
    kind = "TOML" if token.markup == "+++" else "YAML"
    try:
        if kind == "TOML":
            data: Any = tomllib.loads(token.content)
        else:
            import yaml  # type: ignore[import-untyped]

            data = yaml.safe_load(token.content)
    except Exception as exc:  # yaml.YAMLError, tomllib.TOMLDecodeError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return (
            None,
            f"the note starts like {kind} front matter, but it is not valid {kind} "
            f"({first}); read as Markdown instead",
        )
    if data is None and not token.content.strip():
        return {}, ""  # empty front matter
    return (data, "") if isinstance(data, dict) else (None, "")


def _use_front_matter(data: dict[str, Any], layout: Layout) -> None:
    title = data.get("title")
    if isinstance(title, str | int | float) and str(title).strip():
        layout.title = str(title).strip()
    layout.tags.extend(_as_list(data.get("tags", data.get("tag"))))
    layout.aliases.extend(_as_list(data.get("aliases", data.get("alias"))))


def _footnote_contexts(tokens: list[Token]) -> dict[str, tuple[str, ...]]:
    """Footnote label → the heading path (top-level headings) in force at its first reference."""
    path: list[tuple[int, str]] = []
    found: dict[str, tuple[str, ...]] = {}
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open" and tok.level == 0 and i + 1 < len(tokens):
            level = int(tok.tag[1])
            path = [(lv, h) for lv, h in path if lv < level] + [(level, plain(tokens[i + 1]))]
        for child in tok.children or []:
            if child.type == "footnote_ref":
                found.setdefault(str(child.meta.get("label", "")), tuple(h for _, h in path))
    return found


@lru_cache(maxsize=16)
def markdown_layout(text: str, text_title: bool = False) -> Layout:
    """The blocks of Markdown (or plain) ``text``; ``text`` must use ``\\n`` line breaks only.

    ``text_title``: plain-text convention, a short first line without sentence-ending
    punctuation, followed by a blank line and more text, is the note's title and heading.
    The result is cached (the reader and the chunker parse the same text)."""
    tokens = _MD.parse(text)
    layout = Layout(blocks=[])
    if tokens and tokens[0].type == "front_matter":
        # front matter only when it is a mapping: a note that opens with a thematic break
        # (---) and has another one later is Markdown, not front matter
        data, why = _front_matter_data(tokens[0])
        if data is None:
            tokens = _MD_PLAIN.parse(text)
            layout.warnings.extend([why] if why else [])
        else:
            _use_front_matter(data, layout)
    blocks = layout.blocks
    referred = _footnote_contexts(tokens)
    footnote: tuple[str, ...] | None = None  # inside a definition referred to from here
    tables = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        kind = tok.type
        if kind == "footnote_reference_open":
            footnote = referred.get(str(tok.meta.get("label", "")))
        elif kind == "footnote_reference_close":
            footnote = None
        elif footnote is not None and kind == "paragraph_open" and tok.map:
            blocks.append(Block(TEXT, tok.map[0], tok.map[1], headings=footnote))
            i += 1
            continue
        if kind == "front_matter" and tok.map:
            blocks.append(Block(SKIP, tok.map[0], tok.map[1]))
        elif kind == "heading_open" and tok.map:
            title = plain(tokens[i + 1])
            if tok.level == 0:
                blocks.append(Block(HEADING, tok.map[0], tok.map[1], int(tok.tag[1]), title))
            else:  # a heading inside a quote or a list item is text of that block
                blocks.append(Block(TEXT, tok.map[0], tok.map[1]))
            i += 2
        elif kind == "paragraph_open" and tok.map:
            blocks.append(Block(TEXT, tok.map[0], tok.map[1]))
        elif kind in ("fence", "code_block") and tok.map:
            blocks.append(Block(CODE, tok.map[0], tok.map[1]))
        elif kind == "html_block" and tok.map:
            skip = hidden_html_block(tok.content)
            blocks.append(Block(SKIP if skip else TEXT, tok.map[0], tok.map[1]))
        elif kind == "table_open":
            tables += 1
        elif kind == "thead_open" and tok.map:
            # the header row and the delimiter row under it: one unit, repeated in each chunk
            # that holds rows of the table
            blocks.append(Block(TABLE_HEAD, tok.map[0], tok.map[1] + 1, table=tables))
        elif (
            kind == "tr_open"
            and tok.map
            and blocks
            and blocks[-1].table == tables
            and tok.map[0] >= blocks[-1].end  # a body row (the header row is in TABLE_HEAD)
        ):
            blocks.append(Block(TABLE_ROW, tok.map[0], tok.map[1], table=tables))
        i += 1
    for tok in tokens:
        if tok.type == "inline":
            for child in tok.children or []:
                if child.type == "text":
                    layout.tags.extend(inline_tags(child.content))
    if not layout.title:
        layout.title = next((b.title for b in blocks if b.kind == HEADING and b.level == 1), "")
    if text_title:
        _title_line(text, layout)
    layout.tags = _unique(layout.tags)
    layout.aliases = _unique(layout.aliases)
    _find_non_text(text, layout)
    return layout


# --- runs that are not text ---------------------------------------------------------------------

# Shorter runs are left as text: a short data: URI is something a person may search for, and
# fits any budget. 100 is where the README of case 25 draws the line.
MIN_RUN = 100
# A bare run (no data: URI around it) must be much longer: hashes (a 40- or 64-hex git or
# SHA-256 sum, 128 for SHA-512), IDs in URLs and paths with long slugs are text a person quotes.
MIN_BARE = 200
_B64 = "A-Za-z0-9+/=_-"  # standard and URL-safe base64 alphabets, with padding
# An image (or any file) pasted as a data: URI. The payload runs to white space, a quote, a
# bracket or a parenthesis (``data:image/svg+xml;charset=utf-8,%3Csvg…``, ``data:text/plain,…``);
# a base64 payload may go on over the next lines (`_WRAPPED`).
_DATA_URI = re.compile(
    rf"data:[\w.+-]+/[\w.+-]+(?:;[^,\s()\"'<>]{{0,200}})?,"
    rf"(?:(?<=;base64,)[{_B64}]*|[^\s\"'<>()\[\]]*)",
    re.IGNORECASE,
)
# A wrapped base64 payload (some exporters wrap at 76 characters): a line that ends with the
# payload is followed by lines that start with 16 or more characters of payload; which of them
# are payload, `_wrapped_end` decides (not one whose characters read as a name, such as
# ``ScaledDotProductAttention``, or a hash).
_WRAPPED = re.compile(rf"[ \t]*\n[ \t]*([{_B64}]{{16,}})")
_LINE_END = re.compile(r"[ \t]*(?:\n|\Z)")
_RUN = re.compile(rf"[{_B64}]{{{MIN_BARE},}}")
_HEX = re.compile(r"[0-9a-f]+|[0-9A-F]+")
# The pieces of an identifier: capitalised or lowercase words, acronyms, numbers
_WORD = re.compile(r"(?:[A-Z]{2,}(?![a-z])|[A-Z]?[a-z]+|[A-Z]|[0-9])[0-9]*")
_TOKEN_END = re.compile(r"[\s\"'<>()\[\]]")


def _in_url_or_path(text: str, start: int) -> bool:
    """Whether the run at ``start`` continues a URL (``scheme://``, ``www.``) or a path
    (``name.ext/``, ``dir\\``): what precedes it in the same token, back to white space, a
    quote or a bracket, has such structure."""
    if start == 0 or _TOKEN_END.match(text, start - 1):
        return False
    lo = max(0, start - 2000)
    before = text[lo:start]
    cut = max((m.end() for m in _TOKEN_END.finditer(before)), default=0)
    token = before[cut:]
    return "://" in token or "www." in token.lower() or any(c in token for c in "./\\")


def _wordlike(segment: str) -> bool:
    """A piece of a path, slug or identifier: hex (a hash), one case, or words and numbers (a
    name such as ``Week3``, ``BertForMaskedLM``) rather than random letters of both cases."""
    if _HEX.fullmatch(segment) or segment.lower() == segment or segment.upper() == segment:
        return True  # a hash; one case (``lr2e``, ``seed42``, ``JGLUE``): random only 1 in 100
    words = _WORD.findall(segment)
    # random base64 averages ~2.5–3 characters a "word" (digits glue onto the word before), so
    # a long piece needs longer words to pass for a name (``ScaledDotProductAttention``: 6.25)
    per_word = len(segment) / max(len(words), 1)
    return len(segment) <= 3 or per_word >= (3 if len(segment) <= 24 else 4)


def _encoded(run: str) -> bool:
    """A bare run of the base64 alphabet that no language writes: one hex run, or base64 (most
    of it random letters of both cases and digits; a path, slug or identifier, words and hashes
    joined by ``/ - _``, is not)."""
    if _HEX.fullmatch(run):
        return any(c.isdigit() for c in run) and not run.isdigit()
    segments = re.split(r"[+/=_-]+", run)
    random = sum(len(s) for s in segments if not _wordlike(s))
    return random >= 0.6 * len(run)


def non_text_runs(text: str) -> list[NonText]:
    """Runs of ``text`` that are encoded data, not text: ``data:<mime>[;…],<payload>`` URIs of
    more than `MIN_RUN` characters, and bare base64 or hex runs of at least `MIN_BARE`
    characters that are no part of a URL or path. In order, never overlapping; ``[]`` for
    ordinary text."""
    if len(text) < MIN_RUN:
        return []
    found: list[NonText] = []
    taken = 0
    for m in _DATA_URI.finditer(text):
        end = _wrapped_end(text, m) if m.group(0).lower().count(";base64,") else m.end()
        if end - m.start() > MIN_RUN and m.start() >= taken:
            for run in _bare_runs(text, taken, m.start()):
                found.append(run)
            found.append(NonText(m.start(), end, text.count("\n", 0, m.start()) + 1, IMAGE))
            taken = end
    found.extend(_bare_runs(text, taken, len(text)))
    return found


def _wrapped_end(text: str, head: re.Match[str]) -> int:
    """Where a base64 data: URI ends: after ``head``, the lines that go on with its payload.

    Exporters wrap at a fixed width, so a block of two or more lines of one width (32 or more
    characters) is payload, and so is a line that the image's closing bracket or quote ends
    (``…AB==)`` after ``(data:``); any other line (the last, shorter one, or a lone one) must
    read as random base64 (`_payload_piece`), and the first line that does not ends the URI."""
    lines: list[tuple[int, str]] = []  # (where the line's payload ends, the payload)
    at = head.end()
    while line := _WRAPPED.match(text, at):
        lines.append((line.end(), line.group(1)))
        at = line.end()
        if not _LINE_END.match(text, at):  # text goes on after it: the payload's last line
            break
    if not lines:
        return head.end()
    opener = text[head.start() - 1] if head.start() else ""
    closer = {"(": ")", '"': '"', "'": "'"}.get(opener)
    width = len(lines[0][1])
    full = next((i for i, (_, piece) in enumerate(lines) if len(piece) != width), len(lines))
    end = head.end()
    for i, (stop, piece) in enumerate(lines):
        closed = closer is not None and text[stop:].lstrip(" \t")[:1] == closer
        whole = bool(_LINE_END.match(text, stop))  # the line ends with it
        block = whole and i < full and full >= 2 and width >= 32
        if not (block or closed or (len(piece) <= width and _payload_piece(piece))):
            break
        end = stop
        if i >= full or closed or not whole:  # the payload's last line
            break
    return end


# Standard base64 (RFC 2397 data: URIs use RFC 2045's alphabet: no "-" or "_")
_STANDARD_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# A name written in camel case: capitalised or lowercase words, acronyms, numbers and versions
# (random base64 has lone letters: ``aB``, ``Q7``)
_CAMEL = re.compile(r"(?:[A-Z]{2,}|[A-Z]?[a-z]{2,}|v?[0-9]+)+")


def _payload_piece(piece: str) -> bool:
    """A line of a base64 payload, on its own: standard base64 that is neither hex (a hash) nor
    a name (``ScaledDotProductAttention``, ``BertForMaskedLMv2``: camel case, or "words" of 4+
    characters on average where random base64 averages 2.5–3). Random base64 of 16–75
    characters reads as a name about once in 350 (that line then stays text)."""
    if not _STANDARD_B64.fullmatch(piece) or _HEX.fullmatch(piece) or _CAMEL.fullmatch(piece):
        return False
    alnum = sum(c.isalnum() for c in piece)
    return alnum / max(len(_WORD.findall(piece)), 1) < 4


def _bare_runs(text: str, start: int, end: int) -> list[NonText]:
    return [
        NonText(m.start(), m.end(), text.count("\n", 0, m.start()) + 1, ENCODED)
        for m in _RUN.finditer(text, start, end)
        if not _in_url_or_path(text, m.start()) and _encoded(m.group(0))
    ]


def non_text_warning(runs: list[NonText]) -> str | None:
    """One line for the ingest report naming what was left out, or None when nothing was."""
    if not runs:
        return None
    images = [r for r in runs if r.kind == IMAGE]
    other = [r for r in runs if r.kind == ENCODED]
    parts: list[str] = []
    if images:
        parts.append(
            f"{len(images)} inline image(s) pasted as data: URIs ({_lines(images)}; only the "
            "alt text is kept)"
        )
    if other:
        parts.append(f"{len(other)} run(s) of base64/hex-encoded data ({_lines(other)})")
    size = sum(r.end - r.start for r in runs)
    return f"not indexed, as it is not text: {' and '.join(parts)}, {size:,} characters in all"


def _lines(runs: list[NonText]) -> str:
    lines = sorted({r.line for r in runs})
    shown = ", ".join(str(n) for n in lines[:10]) + (" …" if len(lines) > 10 else "")
    return f"line {shown}" if len(lines) == 1 else f"lines {shown}"


def _find_non_text(text: str, layout: Layout) -> None:
    # runs inside unindexed blocks do not matter (front matter, headings); all others do, in
    # indexed blocks and between blocks (``[fig3]: data:…``, a link reference definition, is
    # no block, but a chunk around it would span it)
    starts = [0]
    starts.extend(m.end() for m in re.finditer("\n", text))
    unindexed = [
        (starts[b.start], starts[b.end] if b.end < len(starts) else len(text))
        for b in layout.blocks
        if b.kind in (SKIP, HEADING) and b.start < len(starts)
    ]
    runs = [
        r for r in non_text_runs(text) if not any(a <= r.start and r.end <= b for a, b in unindexed)
    ]
    layout.non_text = runs
    warning = non_text_warning(runs)
    if warning:
        layout.warnings.append(warning)


_TERMINAL = "。．｡！？!?.:：;；"


def _title_line(text: str, layout: Layout) -> None:
    """Plain text: the first line is a title when short, unpunctuated, and set apart."""
    blocks = layout.blocks
    if not blocks or any(b.kind == HEADING for b in blocks):
        return
    first = blocks[0]
    lines = text.split("\n")
    line = lines[first.start].strip() if first.start < len(lines) else ""
    if (
        first.kind == TEXT
        and first.end - first.start == 1
        and len(blocks) > 1
        and blocks[1].start > first.end  # a blank line follows
        and 0 < len(line) <= 80
        and line[-1] not in _TERMINAL
    ):
        blocks[0] = Block(HEADING, first.start, first.end, 1, line)
        layout.title = layout.title or line


def line_layout(lines: list[str], headings: dict[int, int], breaks: frozenset[int]) -> Layout:
    """One block per line (HTML after the reader: one line per element); ``headings`` maps a
    0-based line to its heading level; before a line in ``breaks`` something was left out."""
    blocks: list[Block] = []
    for n, line in enumerate(lines):
        if n in breaks:
            blocks.append(Block(SKIP, n, n))
        if n in headings:
            blocks.append(Block(HEADING, n, n + 1, headings[n], line.strip()))
        elif line.strip():
            blocks.append(Block(TEXT, n, n + 1))
    return Layout(blocks=blocks, non_text=non_text_runs("\n".join(lines)))


def paragraph_layout(text: str, breaks: frozenset[int] = frozenset()) -> Layout:
    """Runs of non-blank lines are text blocks (PDF text: no markup to trust). A line in
    ``breaks`` (0-based; a PDF page's first line) starts a new block after a zero-length
    ``skip`` block, so no chunk spans a page break and each chunk's page is the one it cites."""
    blocks: list[Block] = []
    start: int | None = None
    lines = text.split("\n")
    for n, line in enumerate([*lines, ""]):
        if n in breaks and start is not None:
            blocks.append(Block(TEXT, start, n))
            start = None
        if n in breaks:
            blocks.append(Block(SKIP, n, n))
        if line.strip() and start is None:
            start = n
        elif not line.strip() and start is not None:
            blocks.append(Block(TEXT, start, n))
            start = None
    return Layout(blocks=blocks, non_text=non_text_runs(text))
