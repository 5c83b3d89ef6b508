"""What a browser would not show: hidden by attributes, inline styles or the page's style sheet.

Used for HTML files (`ingest.readers`) and for HTML blocks inside Markdown (`ingest.structure`),
so that text hidden from the reader is never indexed, cited or answered from. CSS is parsed with
tinycss2 and selectors are matched with soupsieve (BeautifulSoup's ``select``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def declarations(css: str) -> dict[str, str]:
    """CSS declarations (``a: b; c: d``) → {property: value}, lower-cased, via tinycss2."""
    import tinycss2

    found: dict[str, str] = {}
    for decl in tinycss2.parse_blocks_contents(css, skip_comments=True, skip_whitespace=True):
        if decl.type == "declaration":
            found[decl.lower_name] = tinycss2.serialize(decl.value).strip().lower()
    return found


def hides(declarations: dict[str, str]) -> bool:
    """Declarations that make an element and its content invisible."""
    display = declarations.get("display", "")
    visibility = declarations.get("visibility", "")
    return display.startswith("none") or visibility.startswith(("hidden", "collapse"))


def hidden_selectors(stylesheets: Iterable[str]) -> list[str]:
    """Selectors of unconditional style rules that hide their elements (``.x {display:none}``);
    rules inside @media and similar are conditional and left alone."""
    import tinycss2

    selectors: list[str] = []
    for sheet in stylesheets:
        for rule in tinycss2.parse_stylesheet(sheet, skip_comments=True, skip_whitespace=True):
            if rule.type != "qualified-rule":
                continue
            if hides(declarations(tinycss2.serialize(rule.content))):
                prelude = tinycss2.serialize(rule.prelude).strip()
                # pseudo-classes (:hover, :not(:focus)…) make a rule conditional
                selectors.extend(s.strip() for s in prelude.split(",") if ":" not in s)
    return [s for s in selectors if s]


def is_hidden(tag: Any) -> bool:
    """Hidden by its own markup: ``hidden`` (not ``until-found``), ``aria-hidden="true"``, an
    inline style with display:none / visibility:hidden, a closed <dialog>."""
    attrs = tag.attrs or {}
    if "hidden" in attrs and str(attrs.get("hidden") or "").lower() != "until-found":
        return True
    if str(attrs.get("aria-hidden", "")).strip().lower() == "true":
        return True
    if tag.name == "dialog" and "open" not in attrs:
        return True
    style = attrs.get("style")
    return bool(style) and hides(declarations(str(style)))


def hidden_html_block(html: str) -> bool:
    """An HTML block of a Markdown note that shows nothing: only comments, or elements each
    hidden by its own attributes."""
    from bs4 import BeautifulSoup, Comment, NavigableString, Tag

    soup = BeautifulSoup(html, "html.parser")
    shown = False
    for node in soup.contents:
        if isinstance(node, Comment):
            continue
        if isinstance(node, Tag):
            shown = shown or not is_hidden(node)
        elif isinstance(node, NavigableString) and node.strip():
            shown = True
    return not shown
