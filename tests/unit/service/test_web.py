"""The page's files are served with their types and a strict content policy (no model needed:
GET / and /static/* use no components)."""

from __future__ import annotations

import asyncio
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
