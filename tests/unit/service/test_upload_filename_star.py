"""A multipart part named only by ``filename*`` (RFC 7578 §4.2 with RFC 5987/2231's
``charset'lang'percent-encoded`` value) is an upload like any other (issue 25 review): decoded
by the standard library, preferred to ``filename`` when both are given, and refused only for a
name that is bad or does not decode. The route runs over a stand-in ingestor."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.routes.ingest import BadUploadNameError, extended_filename
from tests.unit.service.uploads import Ingestor, PostIngest


def send(
    post: PostIngest, disposition: bytes, data: bytes = b"# x\n"
) -> tuple[httpx.Response, Ingestor]:
    body = b'--B\r\nContent-Disposition: form-data; name="file"; ' + disposition
    body += b"\r\nContent-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--B--\r\n"
    ingestor = Ingestor()
    headers = {"content-type": "multipart/form-data; boundary=B"}
    return post(ingestor, content=body, headers=headers), ingestor


@pytest.mark.parametrize(
    ("disposition", "kept"),
    [
        (b"filename*=UTF-8''2024%2F%E3%83%8E%E3%83%BC%E3%83%88.md", "2024/ノート.md"),
        (b"filename*=utf-8'ja'%E8%A1%8C%E5%88%97.md", "行列.md"),  # lowercase charset, a language
        (b"filename*=UTF-8''plain.md", "plain.md"),
        (b"filename*0*=UTF-8''week1%2F; filename*1=index.md", "week1/index.md"),  # continued
        (b"filename*=ISO-8859-1''caf%E9.md", "café.md"),
    ],
)
def test_a_part_named_only_by_filename_star_is_kept_and_ingested(
    tmp_path: Path, post_ingest: PostIngest, disposition: bytes, kept: str
) -> None:
    data = "# ノート\n\n本文。\n".encode("utf-16")  # bytes kept as sent, not decoded as a field
    r, ingestor = send(post_ingest, disposition, data)
    assert r.status_code == 200, r.text
    target = (tmp_path / "uploads").resolve() / kept
    assert ingestor.paths == [target]
    assert target.read_bytes() == data


def test_a_large_part_named_only_by_filename_star_is_a_file(
    tmp_path: Path, post_ingest: PostIngest
) -> None:
    data = b"# big\n\n" + b"a" * (2 * 1024 * 1024)  # over Starlette's 1 MB for a text field
    r, _ = send(post_ingest, b"filename*=UTF-8''big.md", data)
    assert r.status_code == 200, r.text
    assert (tmp_path / "uploads" / "big.md").read_bytes() == data


@pytest.mark.parametrize(
    ("disposition", "why"),
    [
        (b"filename*=UTF-8''..%2Fescape.md", "'..'"),
        (b"filename*=UTF-8''%2Fetc%2Fescape.md", "absolute"),
        (b"filename*=UTF-8''.hidden.md", "hidden"),
        (b"filename*=UTF-8''%FF%FE.md", "not valid UTF-8"),
        (b"filename*=x-no-such-charset''a.md", "not valid x-no-such-charset"),
    ],
)
def test_a_bad_or_undecodable_filename_star_is_refused_and_nothing_written(
    tmp_path: Path, post_ingest: PostIngest, disposition: bytes, why: str
) -> None:
    r, ingestor = send(post_ingest, disposition)
    assert r.status_code == 422, r.text
    assert why in r.json()["error"]["message"]
    assert ingestor.paths == []
    uploads = tmp_path / "uploads"
    assert not uploads.exists() or not any(p.is_file() for p in uploads.rglob("*"))


def test_filename_star_wins_over_filename_and_an_undecodable_one_gives_way(
    tmp_path: Path, post_ingest: PostIngest
) -> None:
    r, ingestor = send(post_ingest, b"filename=\"a.md\"; filename*=UTF-8''b%2Fc.md")
    assert r.status_code == 200 and ingestor.paths == [(tmp_path / "uploads").resolve() / "b/c.md"]
    r, ingestor = send(post_ingest, b"filename=\"a.md\"; filename*=UTF-8''%FF.md")
    assert r.status_code == 200 and ingestor.paths == [(tmp_path / "uploads").resolve() / "a.md"]


def test_a_file_part_with_no_file_name_at_all_is_refused(post_ingest: PostIngest) -> None:
    r, _ = send(post_ingest, b'other="x"')
    assert r.status_code == 422, r.text
    assert "no file name" in r.json()["error"]["message"]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=30))
def test_any_name_percent_encoded_decodes_back(name: str) -> None:
    from urllib.parse import quote

    disposition = f"form-data; name=\"file\"; filename*=UTF-8''{quote(name, safe='')}"
    assert extended_filename(disposition) == name
    with pytest.raises(BadUploadNameError):
        extended_filename("form-data; name=\"file\"; filename*=UTF-8''%C3")
