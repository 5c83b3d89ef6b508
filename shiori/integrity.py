"""`shiori store check [--repair]`: is the store what the publish protocol promises?

The protocol (`shiori.index`) promises: every live chunk belongs to a file with a record, each
file shows exactly one whole generation (chunks 0..n-1, as many as its record says), vectors
have the collection's size, and invisible points are only the leftovers of an interrupted
ingest. An ingest killed at the wrong moment, a full disk, or a store edited by hand can break
that; this module finds out what is broken, and repairs it without losing a note:

======================  =====================================================  =================
problem                 what it is                                             --repair
======================  =====================================================  =================
unpublished             invisible chunks (``live=false``) of a killed ingest   deleted
mixed_generations       a file with live chunks of two generations             the recorded one
                                                                               kept, if whole
half_published          a live generation with chunks missing or doubled       file forgotten
missing_record          a whole live generation without its file record        record rebuilt
record_mismatch         a record whose generation or count differ from the     record rebuilt
                        live chunks
record_without_chunks   a record whose file has no live chunk                  record deleted
bad_point               a point without a readable payload, or a vector that   file forgotten
                        is missing, of the wrong size or not finite
wrong_dimension         the collection's vectors differ from the model's       (none: re-ingest
                                                                               into another
                                                                               collection)
======================  =====================================================  =================

"File forgotten" removes its chunks and record, so the next `shiori ingest` reads it afresh.
Without --repair nothing is written.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from shiori.chunk import Chunk
from shiori.config import Settings
from shiori.index import DENSE, SPARSE, FileRecord, NoteIndex
from shiori.models import ModelError, resolve


@dataclass
class Problem:
    kind: str
    path: str
    detail: str
    repair: str = ""


@dataclass
class IntegrityReport:
    collection: str
    dimension: int | None
    points: int = 0
    live_chunks: int = 0
    files: int = 0
    problems: list[Problem] = field(default_factory=list)
    repaired: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


@dataclass
class _Point:
    id: str
    path: str
    chunk: Chunk | None
    live: bool
    why_bad: str | None = None


def model_dimension(settings: Settings) -> int | None:
    """The embedding size the configured model gives, read from its sentence-transformers
    files (modules.json → the last Dense layer, else the pooling size) without loading it; None
    when it cannot be told that way (a hub id, another layout)."""
    if settings.embed_dim:
        return settings.embed_dim
    try:
        folder = Path(resolve(settings.embed_model, settings.models_dir))
        modules = json.loads((folder / "modules.json").read_text())
    except (ModelError, OSError, ValueError):
        return None
    size = None
    for module in modules:
        config = folder / module.get("path", "") / "config.json"
        kind = module.get("type", "")
        try:
            if kind.endswith("Pooling"):
                size = json.loads(config.read_text())["word_embedding_dimension"]
            elif kind.endswith("Dense"):
                size = json.loads(config.read_text())["out_features"]
        except (OSError, ValueError, KeyError):
            return None
    return int(size) if size else None


def _vector_problem(vector: Any, size: int | None) -> str | None:
    vectors = vector if isinstance(vector, dict) else {}
    dense, sparse = vectors.get(DENSE), vectors.get(SPARSE)
    if not isinstance(dense, list) or not dense:
        return "no dense vector"
    if size is not None and len(dense) != size:
        return f"dense vector of {len(dense)} values, the collection's size is {size}"
    if not all(math.isfinite(float(x)) for x in dense) or not any(dense):
        return "dense vector is zero or not finite"
    if sparse is None:
        return "no sparse vector"
    if len(sparse.indices) != len(sparse.values) or not all(
        math.isfinite(v) for v in sparse.values
    ):
        return "sparse vector is malformed"
    return None


def _points(index: NoteIndex, size: int | None) -> Iterator[_Point]:
    for p in index.points():
        payload = p.payload or {}
        try:
            chunk: Chunk | None = Chunk.from_payload(payload)
            why = _vector_problem(p.vector, size)
        except (TypeError, ValueError) as exc:
            chunk, why = None, f"unreadable payload: {exc}"
        path = payload.get("path")
        yield _Point(
            str(p.id), path if isinstance(path, str) else "", chunk, bool(payload.get("live")),
            why,
        )  # fmt: skip


def check(index: NoteIndex, repair: bool = False) -> IntegrityReport:
    """Check the store behind ``index`` (and repair it: see the module doc). The report lists
    what was found; after a repair, `check` again to see the result."""
    size = index.stored_dimension()
    report = IntegrityReport(index.collection, size)
    expected = model_dimension(index.settings)
    if size is not None and expected is not None and size != expected:
        report.problems.append(
            Problem(
                "wrong_dimension",
                "",
                f"the collection holds {size}-d vectors; the model gives {expected}-d, so no "
                "query can search it. Ingest into another SHIORI_COLLECTION.",
            )
        )
    records = index.file_records()
    report.files = len(records)

    unpublished: list[str] = []
    live: dict[str, list[Chunk]] = defaultdict(list)
    bad: dict[str, list[str]] = defaultdict(list)
    for point in _points(index, size):
        report.points += 1
        if point.why_bad is not None or point.chunk is None:
            bad[point.path].append(point.id)
            report.problems.append(
                Problem("bad_point", point.path, f"point {point.id}: {point.why_bad}",
                        "file forgotten" if point.path else "deleted")
            )  # fmt: skip
        elif not point.live:
            unpublished.append(point.id)
        else:
            live[point.chunk.path].append(point.chunk)
            report.live_chunks += 1
    if unpublished:
        report.problems.append(
            Problem("unpublished", "", f"{len(unpublished)} invisible chunks", "deleted")
        )

    forget = {path for path in bad if path}
    nameless = bad.get("", [])
    rebuild: dict[str, list[Chunk]] = {}
    drop_generations: dict[str, str] = {}  # path -> generation to keep
    for path, chunks in live.items():
        record = records.get(path)
        generations = {c.generation for c in chunks}
        keep = record.generation if record and record.generation in generations else None
        if path in forget:
            continue
        if len(generations) > 1:
            if keep is not None and _whole([c for c in chunks if c.generation == keep]):
                drop_generations[path] = keep
                chunks = [c for c in chunks if c.generation == keep]
                how = "the recorded generation kept"
            else:
                forget.add(path)
                how = "file forgotten"
            report.problems.append(
                Problem("mixed_generations", path, f"{len(generations)} live generations", how)
            )
            if path in forget:
                continue
        if not _whole(chunks):
            forget.add(path)
            indexes = sorted(c.chunk_index for c in chunks)
            report.problems.append(
                Problem("half_published", path, f"live chunk numbers {indexes[:20]}",
                        "file forgotten")
            )  # fmt: skip
            continue
        if record is None:
            rebuild[path] = chunks
            report.problems.append(
                Problem("missing_record", path, f"{len(chunks)} live chunks", "record rebuilt")
            )
        elif record.generation != chunks[0].generation or record.chunks != len(chunks):
            rebuild[path] = chunks
            report.problems.append(
                Problem("record_mismatch", path,
                        f"record: {record.chunks} chunks of {record.generation[:8]}; live: "
                        f"{len(chunks)} of {chunks[0].generation[:8]}", "record rebuilt")
            )  # fmt: skip
    for path in records:
        if path not in live and path not in forget:
            forget.add(path)
            report.problems.append(
                Problem("record_without_chunks", path, "no live chunk", "record deleted")
            )

    if repair and report.problems:
        _repair(index, unpublished + nameless, forget, drop_generations, rebuild)
        report.repaired = True
    return report


def _whole(chunks: list[Chunk]) -> bool:
    return sorted(c.chunk_index for c in chunks) == list(range(len(chunks)))


def _record_from(chunks: list[Chunk]) -> FileRecord:
    first = chunks[0]
    path = Path(first.path)
    try:  # size and time only help the next ingest notice changes; the generation decides
        stat = path.stat()
        size, mtime_ns = stat.st_size, stat.st_mtime_ns
    except OSError:
        size, mtime_ns = 0, 0
    return FileRecord(
        path=first.path, source=first.source, file_hash=first.file_hash,
        generation=first.generation, size=size, mtime_ns=mtime_ns, chunks=len(chunks),
        title=first.title,
    )  # fmt: skip


def _repair(
    index: NoteIndex,
    orphans: list[str],
    forget: set[str],
    keep_generation: dict[str, str],
    rebuild: dict[str, list[Chunk]],
) -> None:
    with index.lock:
        # invisible leftovers, and points too broken to name their file
        index.delete_points(orphans)
        for path, generation in keep_generation.items():
            index.keep_generation(path, generation)
        index.record_files([_record_from(chunks) for chunks in rebuild.values()])
    for path in forget:
        index.remove_file(path)
