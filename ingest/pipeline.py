"""The ingest job: discover → read → split → embed (dense + sparse) → write → publish → prune.

Incremental by design: each file's *generation* is a digest of its bytes and of every setting
that shapes its chunks and vectors. A file whose generation is already published is skipped
without reading or embedding; a changed file reuses the vectors of its unchanged chunks (by
content hash) and embeds only the rest. Chunks of several files are embedded together so the
model sees full batches. See `shiori.index` for the publish protocol that keeps a killed ingest
from showing half a document.
"""

from __future__ import annotations

import hashlib
import os
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.schema import BaseNode

from ingest import instructions
from ingest.chunking import NoteSplitter
from ingest.discovery import discover
from ingest.readers import UnreadableFileError, read_document
from ingest.structure import readable
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import Chunk, FileRecord, NoteIndex, Vectors
from shiori.sparse import SparseEncoder

SPLITTER_VERSION = "2"  # 2: CommonMark structure, front matter, NFC sources
# a long ingest lets the embedded engine index what it wrote every 100k chunks, as in the
# configuration measured at 1M chunks (docs/benchmarks.md, "disk-sq-seg": its recall and memory
# were measured with this and the segment cap together, not this alone)
OPTIMIZE_EVERY_CHUNKS = 100_000


@dataclass
class IngestReport:
    files_seen: int = 0
    files_new: int = 0
    files_updated: int = 0
    files_unchanged: int = 0
    files_deleted: int = 0
    files_failed: int = 0
    files_unsupported: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    embeddings_computed: int = 0
    embeddings_reused: int = 0
    seconds: float = 0.0
    failures: list[dict[str, str]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    # read, but with something to check: {"path", "warning"} (an encoding guessed between two
    # candidates, front matter that does not parse)
    warnings: list[dict[str, str]] = field(default_factory=list)
    # {"path", "same_as"}: byte-identical to another ingested note; both stay listed, search
    # shows their passages once
    duplicates: list[dict[str, str]] = field(default_factory=list)
    # notes (re)written in this run holding instruction-like text (ingest.instructions):
    # [{"path", "passages": flagged chunks, "examples": up to 3 flagged pieces, shortened}]
    flagged: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Reporter(Protocol):
    """Hooks for progress output; the CLI draws a bar, tests and the server stay quiet."""

    def start(self, total_files: int) -> None: ...

    def advance(self, files: int = 1) -> None: ...

    def warn(self, message: str) -> None: ...


class SilentReporter:
    def start(self, total_files: int) -> None: ...

    def advance(self, files: int = 1) -> None: ...

    def warn(self, message: str) -> None: ...


def display_path(path: Path, uploads_dir: Path | None = None) -> str:
    """How a note is named in citations: `uploads/NAME` for a note uploaded to the service (its
    server path means nothing to the reader), else relative to the working directory, else
    absolute; always in Unicode NFC (macOS writes names decomposed, people type them composed)."""
    if uploads_dir is not None:
        uploads = uploads_dir.expanduser().resolve()
        if path.is_relative_to(uploads):
            return nfc("uploads/" + path.relative_to(uploads).as_posix())
    try:
        return nfc(path.relative_to(Path.cwd()).as_posix())
    except ValueError:
        return nfc(path.as_posix())


def nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def file_digest(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest(), stat.st_size, stat.st_mtime_ns


@dataclass
class _Pending:
    path: Path
    file_hash: str
    generation: str
    size: int
    mtime_ns: int
    is_new: bool
    chunks: list[Chunk] = field(default_factory=list)
    title: str = ""
    tags: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)


class Ingestor:
    """Holds the shared parts (index, embedder, encoders) and runs ingests with them."""

    def __init__(self, settings: Settings, index: NoteIndex, embedder: Embedder) -> None:
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.sparse = SparseEncoder()
        self.splitter = NoteSplitter(
            embedder.count_tokens,
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
        )
        self.pipeline = IngestionPipeline(transformations=[self.splitter], disable_cache=True)
        self.signature = "\x1f".join(
            [
                SPLITTER_VERSION,
                embedder.reference,
                str(settings.embed_dim),
                str(settings.chunk_tokens),
                str(settings.chunk_overlap_tokens),
                repr(self.sparse),
                instructions.VERSION,
            ]
        )

    def generation_of(self, path: Path, file_hash: str) -> str:
        """Unique to this file, its bytes and the settings: a changed setting re-ingests."""
        key = f"{path}\x1f{file_hash}\x1f{self.signature}"
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    def run(
        self,
        paths: Iterable[str | Path],
        *,
        prune: bool = False,
        reporter: Reporter | None = None,
        confine_to: Sequence[Path] = (),
    ) -> IngestReport:
        began = time.perf_counter()
        reporter = reporter or SilentReporter()
        report = IngestReport()
        found = discover(list(paths), confine_to)
        report.missing = found.missing
        for folder, why in found.skipped:  # linked folders not followed (loops, leading out)
            self._warn(report, reporter, folder, why)
        report.files_unsupported = len(found.unsupported)
        report.files_seen = len(found.files)
        records = self.index.file_records()
        reporter.start(len(found.files))
        for path in found.outside:
            report.files_seen += 1
            self._fail(report, reporter, path, "links to a file outside the allowed folders")

        todo: list[_Pending] = []
        # byte-identical notes: earlier in this run, or already indexed from elsewhere
        in_run = {str(p) for p in found.files}
        by_hash: dict[str, str] = {}
        for r in records.values():
            if r.path not in in_run and os.path.exists(r.path):
                by_hash.setdefault(r.file_hash, r.path)
        seen_hash: dict[str, Path] = {}
        for path in found.files:
            try:
                file_hash, size, mtime_ns = file_digest(path)
            except OSError as exc:
                self._fail(report, reporter, path, f"cannot read: {exc.strerror or exc}")
                continue
            twin = seen_hash.setdefault(file_hash, path)
            other = str(twin) if twin != path else by_hash.get(file_hash)
            if other is not None and size:  # (empty files are not copies of each other)
                self._duplicate(report, reporter, path, Path(other))
            generation = self.generation_of(path, file_hash)
            record = records.get(str(path))
            if record is not None and record.generation == generation:
                report.files_unchanged += 1
                reporter.advance()
                continue
            todo.append(_Pending(path, file_hash, generation, size, mtime_ns, record is None))

        self.index.discard_unpublished(str(p.path) for p in todo)
        group: list[_Pending] = []
        group_chunks = optimized_at = 0
        for pending in todo:
            try:
                self._split(pending, report, reporter)
            except UnreadableFileError as exc:
                self._fail(report, reporter, pending.path, str(exc))
                continue
            group.append(pending)
            group_chunks += len(pending.chunks)
            if group_chunks >= self.settings.ingest_group_chunks:
                self._store(group, report, reporter)
                group, group_chunks = [], 0
                if report.chunks_written - optimized_at >= OPTIMIZE_EVERY_CHUNKS:
                    self.index.optimize()
                    optimized_at = report.chunks_written
        if group:
            self._store(group, report, reporter)

        if prune:
            self._prune(found.roots, records, report)
        if report.chunks_written or report.chunks_deleted:
            self.index.optimize()
        report.seconds = round(time.perf_counter() - began, 3)
        return report

    # --- steps -----------------------------------------------------------------------------
    def _fail(self, report: IngestReport, reporter: Reporter, path: Path, why: str) -> None:
        report.files_failed += 1
        shown = display_path(path, self.settings.uploads_dir)
        report.failures.append({"path": shown, "error": why})
        reporter.warn(f"skipped {shown}: {why}")
        reporter.advance()

    def _warn(self, report: IngestReport, reporter: Reporter, path: Path, why: str) -> None:
        shown = display_path(path, self.settings.uploads_dir)
        report.warnings.append({"path": shown, "warning": why})
        reporter.warn(f"{shown}: {why}")

    def _duplicate(self, report: IngestReport, reporter: Reporter, path: Path, other: Path) -> None:
        shown = display_path(path, self.settings.uploads_dir)
        same_as = display_path(other, self.settings.uploads_dir)
        report.duplicates.append({"path": shown, "same_as": same_as})
        reporter.warn(f"{shown} has the same content as {same_as} (search shows it once)")

    def _split(self, pending: _Pending, report: IngestReport, reporter: Reporter) -> None:
        document = read_document(pending.path)
        nodes: Sequence[BaseNode] = self.pipeline.run(documents=[document])
        if not nodes:
            raise UnreadableFileError("no text to index")
        source = display_path(pending.path, self.settings.uploads_dir)
        pending.title = str(document.metadata.get("title", pending.path.stem))
        pending.tags = list(document.metadata.get("tags", []))
        pending.aliases = list(document.metadata.get("aliases", []))
        for warning in document.metadata.get("warnings", []):
            report.warnings.append({"path": source, "warning": warning})
            reporter.warn(f"{source}: {warning}")
        pending.chunks = [
            Chunk(
                path=str(pending.path),
                source=source,
                title=pending.title,
                headings=list(n.metadata["headings"]),
                line_start=int(n.metadata["line_start"]),
                line_end=int(n.metadata["line_end"]),
                char_start=int(n.metadata["char_start"]),
                char_end=int(n.metadata["char_end"]),
                text=n.get_content(),
                chunk_index=int(n.metadata["chunk_index"]),
                content_hash=str(n.metadata["content_hash"]),
                file_hash=pending.file_hash,
                generation=pending.generation,
                page=n.metadata.get("page"),
                kind=str(n.metadata.get("kind", "text")),
                tags=pending.tags,
                aliases=pending.aliases,
                lead_chars=int(n.metadata.get("lead_chars", 0)),
                lead_line=int(n.metadata.get("lead_line", 0)),
                instruction_spans=instructions.find_instructions(n.get_content()),
            )
            for n in nodes
        ]

    def _store(self, group: list[_Pending], report: IngestReport, reporter: Reporter) -> None:
        vectors: dict[tuple[int, int], Vectors] = {}
        need: list[tuple[int, int]] = []
        for gi, pending in enumerate(group):
            reuse = {} if pending.is_new else self.index.existing_vectors(str(pending.path))
            for ci, chunk in enumerate(pending.chunks):
                if chunk.content_hash in reuse:
                    vectors[(gi, ci)] = reuse[chunk.content_hash]
                    report.embeddings_reused += 1
                else:
                    need.append((gi, ci))
        chunks = [group[gi].chunks[ci] for gi, ci in need]
        dense = self.embedder.embed_documents(
            [readable(c.text) for c in chunks], [embed_title(c) for c in chunks]
        )
        report.embeddings_computed += len(chunks)
        for key, chunk, row in zip(need, chunks, dense, strict=True):
            vectors[key] = Vectors(row.tolist(), self.sparse.encode_document(sparse_text(chunk)))
        records = []
        for gi, pending in enumerate(group):
            vecs = [vectors[(gi, ci)] for ci in range(len(pending.chunks))]
            report.chunks_written += self.index.write_chunks(pending.chunks, vecs)
            records.append(
                FileRecord(
                    path=str(pending.path),
                    source=display_path(pending.path, self.settings.uploads_dir),
                    file_hash=pending.file_hash,
                    generation=pending.generation,
                    size=pending.size,
                    mtime_ns=pending.mtime_ns,
                    chunks=len(pending.chunks),
                    title=pending.title,
                    tags=pending.tags,
                    aliases=pending.aliases,
                )
            )
        report.chunks_deleted += self.index.publish(records)
        for pending in group:
            self._note_instructions(pending, report, reporter)
            if pending.is_new:
                report.files_new += 1
            else:
                report.files_updated += 1
            reporter.advance()

    def _note_instructions(
        self, pending: _Pending, report: IngestReport, reporter: Reporter
    ) -> None:
        flagged = [c for c in pending.chunks if c.instruction_spans]
        if not flagged:
            return
        shown = display_path(pending.path, self.settings.uploads_dir)
        pieces = list(dict.fromkeys(t for c in flagged for t in c.instruction_texts))
        examples = [" ".join(t.split())[:120] for t in pieces[:3]]
        report.flagged.append({"path": shown, "passages": len(flagged), "examples": examples})
        reporter.warn(
            f"{shown}: {len(flagged)} passage(s) hold text addressed to an AI model, kept as "
            f"note text and never followed: {examples[0]!r}"
        )

    def _prune(
        self, roots: list[Path], records: dict[str, FileRecord], report: IngestReport
    ) -> None:
        """Forget files under the given roots that no longer exist on disk."""
        for path_str in records:
            path = Path(path_str)
            inside = any(path == root or root in path.parents for root in roots)
            if inside and not os.path.exists(path):
                report.chunks_deleted += self.index.remove_file(path_str)
                report.files_deleted += 1


def embed_title(chunk: Chunk) -> str:
    """The document 'title' given to the embedding model: note title and heading path."""
    parts = [chunk.title, *[h for h in chunk.headings if h != chunk.title]]
    return " > ".join(p for p in parts if p)


def sparse_text(chunk: Chunk) -> str:
    """Headings and aliases count as text for keyword matching, too; links as their labels."""
    names = " ".join([embed_title(chunk), *chunk.aliases])
    return f"{names}\n{readable(chunk.text)}"
