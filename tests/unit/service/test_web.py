"""The page's files are served with their types and a strict content policy (no model needed:
GET / and /static/* use no components)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from shiori.config import Settings

WEB = Path(__file__).resolve().parents[3] / "service" / "web"


def get(path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(Settings(qdrant=":memory:")))

    async def fetch() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://shiori") as http:
            return await http.get(path)

    return asyncio.run(fetch())


def test_the_page_and_its_assets_are_served_with_a_strict_policy() -> None:
    page = get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    # every asset the page names is served, with its type
    named = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert {"/static/app.js", "/static/style.css"} <= set(named)
    for path in named:
        asset = get(path)
        assert asset.status_code == 200, path
        assert asset.content == (WEB / path.removeprefix("/static/")).read_bytes()
    assert get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert get("/static/i18n.js").headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("path", ["/static/__init__.py", "/static/..%2F..%2Fapp.py", "/static/x"])
def test_nothing_else_is_served(path: str) -> None:
    r = get(path)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"


def test_the_page_uses_no_inline_script_and_labels_its_inputs() -> None:
    html = (WEB / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "onclick=" not in html  # the policy would block them
    for field in re.findall(r'<(?:input|textarea)[^>]*id="([^"]+)"', html):
        assert f'for="{field}"' in html, f"#{field} has no label"


def test_the_script_parses() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    checked = subprocess.run([node, "--check", str(WEB / "app.js")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def messages() -> dict[str, dict[str, str]]:
    """service/web/i18n.js's MESSAGES as node reads it (functions as their source)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = (
        "const {MESSAGES} = require(process.argv[1]);"
        "const out = {};"
        "for (const [lang, m] of Object.entries(MESSAGES))"
        "  out[lang] = Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)]));"
        "console.log(JSON.stringify(out));"
    )
    done = subprocess.run(
        [node, "-e", script, str(WEB / "i18n.js")], capture_output=True, text=True, check=True
    )
    loaded: dict[str, dict[str, str]] = json.loads(done.stdout)
    return loaded


def test_every_string_of_the_page_is_in_japanese_and_english() -> None:
    found = messages()
    assert set(found) == {"en", "ja"}
    assert set(found["en"]) == set(found["ja"])
    for key, english in found["en"].items():
        japanese = found["ja"][key]
        # the same {placeholders} (function values name theirs as p.name)
        names = set(re.findall(r"\{(\w+)\}|p\.(\w+)", english))
        assert {n for pair in names for n in pair if n} == {
            n for pair in re.findall(r"\{(\w+)\}|p\.(\w+)", japanese) for n in pair if n
        }, key
        if key not in {"plain", "switchLanguage", "switchLanguageLabel"}:
            assert japanese != english, f"{key} is not translated"
            assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", japanese), f"{key}: {japanese}"


def test_every_message_the_page_uses_exists_and_every_message_is_used() -> None:
    keys = set(messages()["en"])
    script = (WEB / "app.js").read_text(encoding="utf-8")
    html = (WEB / "index.html").read_text(encoding="utf-8")
    used = set(re.findall(r'data-i18n(?:-[a-z-]+)?="(\w+)"', html))
    used |= set(re.findall(r'\b(?:t|status|notice)\(\s*"(\w+)"', script))
    used |= set(re.findall(r'\bsay\("\w+",\s*"(\w+)"', script))
    used |= set(re.findall(r'(?:titleKey: |sourcesPanel\(turn, )"(\w+)"', script))
    for pair in re.findall(r'\? "(\w+)" : "(\w+)"', script):  # t(cond ? "a" : "b")
        used |= set(pair) - {"en", "ja"}
    assert used - keys == set(), "used but not defined"
    literals = set(re.findall(r'"(\w+)"', script)) | used
    assert keys - literals == set(), "defined but never used"
    # no text of the page's own is left outside the messages: every text in the HTML is in an
    # element that names its message (the script replaces it), or is a name
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>|<!--.*?-->", "", html, flags=re.S)
    for match in re.finditer(r"(<[^>]+>)([^<]+)(?=<)", body):
        tag, text = match.group(1), " ".join(match.group(2).split())
        if text and "data-i18n=" not in tag:
            assert text in {"栞", "Shiori", "API:", "/docs"}, match.group(0)
