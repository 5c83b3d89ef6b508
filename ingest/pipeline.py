"""The ingest job: discover → read → split → embed (dense + sparse) → write → publish → forget.

Incremental by design: each file's *generation* is a digest of its bytes and of every setting
that shapes its chunks and vectors. A file whose generation is already published is skipped
without reading or embedding; a changed file reuses the vectors of its unchanged chunks (by
content hash) and embeds only the rest; a moved or copied note (same bytes as a note already in
the index) reuses that note's vectors. Chunks of several files are embedded together so the
model sees full batches. See `shiori.index` for the publish protocol that keeps a killed ingest
from showing half a document.

An ingest of some paths leaves the index matching those paths as they are now (a sync): a note
emptied by its author, or changed into something that cannot be read, loses its old passages;
a note under the paths whose file is gone (deleted, renamed, moved) is forgotten; with
``prune``, so is a note still on disk that the paths no longer take (hidden, or excluded by a
.shioriignore). Notes outside the given paths are never touched. Everything forgotten or
dropped is named in the report.
"""

from __future__ import annotations

import hashlib
import os
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import Any, Protocol

from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.schema import BaseNode

from ingest import instructions
from ingest.chunking import NoteSplitter
from ingest.discovery import Discovery, discover
from ingest.readers import EmptyDocumentError, UnreadableFileError, read_document
from ingest.structure import readable
from shiori.config import Settings
from shiori.embedding import Embedder
from shiori.index import Chunk, FileRecord, NoteIndex, Vectors
from shiori.sparse import SparseEncoder

# 3: footnotes, data: URIs and encoded runs left out, PDF page breaks; 4: an image inside a
# sentence no longer cuts it, a wrapped data: URI no longer takes the start of the next line
SPLITTER_VERSION = "4"
# a long ingest lets the embedded engine index what it wrote every 100k chunks, as in the
# configuration measured at 1M chunks (docs/benchmarks.md, "disk-sq-seg": its recall and memory
# were measured with this and the segment cap together, not this alone)
OPTIMIZE_EVERY_CHUNKS = 100_000
# files of unsupported types named one by one in a report; the rest are counted (a folder of
# photos would otherwise bury the warnings that matter)
UNSUPPORTED_NAMED = 20
# the warning for a note with nothing to index; read_document's error for a blank file starts
# with the same word
EMPTY = "empty: no text to index"


@dataclass
class IngestReport:
    files_seen: int = 0
    files_new: int = 0
    files_updated: int = 0
    files_unchanged: int = 0
    files_deleted: int = 0
    files_failed: int = 0
    # read, but with nothing to index (0 bytes, blank, only front matter): not a failure (an
    # empty placeholder is normal in a notebook); an earlier version's passages are removed
    files_empty: int = 0
    # files of types that are not read, met in folder walks: all counted here, per file
    # extension in `unsupported_types` ({".png": 3, "": 1}: "" for no extension), and the first
    # `UNSUPPORTED_NAMED` named in `unsupported` ({"path", "warning"}, in walk order)
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
    # notes forgotten by this run, one per `files_deleted`: {"path", "reason"}; the reason is
    # "file is gone", "moved to PATH" (same bytes now there) or, with prune, why the paths no
    # longer take it
    forgotten: list[dict[str, str]] = field(default_factory=list)
    unsupported: list[dict[str, str]] = field(default_factory=list)
    unsupported_types: dict[str, int] = field(default_factory=dict)

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
    # indexed notes with the same bytes at other paths (a moved or copied note): their vectors
    # are reused for chunks with the same content hash
    donors: list[str] = field(default_factory=list)
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
        """Ingest these files and folders (folders walked recursively) and bring the index in
        step with them: new and changed notes are (re)written, unchanged ones cost a hash.

        The index then matches the paths as they are now (see the module doc): a note under
        them whose file is gone is forgotten, an emptied note keeps no passages, a note that
        changed into something unreadable loses its old passages. With ``prune``, notes under
        the paths that are still on disk but no longer taken (hidden, in a .shioriignore, of a
        type no longer read) are forgotten too. A path that does not exist is only reported
        (``missing``): nothing under it is forgotten. ``confine_to``: files whose real path lies
        outside these folders are refused (the service's ingest roots).

        Returns the report; a file that cannot be read is a failure in it, never an exception
        (errors of the store itself propagate)."""
        began = time.perf_counter()
        reporter = reporter or SilentReporter()
        report = IngestReport()
        found = discover(list(paths), confine_to)
        report.missing = found.missing
        for folder, why in found.skipped:  # linked folders not followed (loops, leading out)
            self._warn(report, reporter, folder, why)
        for path, kept in found.same_file:  # one file, several paths: taken at one
            self._warn(report, reporter, path, self._same_file(kept))
        self._unsupported(found.unsupported, report, reporter)
        records = self.index.file_records()
        same_file = self._one_note_per_file(found, records, report, reporter)
        report.files_seen = len(found.files)
        reporter.start(len(found.files))
        for path in found.outside:
            report.files_seen += 1
            self._fail(
                report, reporter, path, "links to a file outside the allowed folders",
                records.get(str(path)),
            )  # fmt: skip

        todo: list[_Pending] = []
        # byte-identical notes: earlier in this run, or already indexed from elsewhere
        in_run = {str(p) for p in found.files}
        by_hash: dict[str, str] = {}
        # every indexed path per file hash, gone or not: a moved note's old record still holds
        # the vectors its new path can reuse (it is forgotten only after this run's writes)
        paths_by_hash: dict[str, list[str]] = {}
        for r in records.values():
            paths_by_hash.setdefault(r.file_hash, []).append(r.path)
            if r.path not in in_run and r.path not in same_file and os.path.exists(r.path):
                by_hash.setdefault(r.file_hash, r.path)
        seen_hash: dict[str, Path] = {}
        for path in found.files:
            try:
                file_hash, size, mtime_ns = file_digest(path)
            except OSError as exc:
                # the bytes could not be read (permissions, a lock, gone since the walk): the
                # content may be unchanged, so its passages stay; a file gone by now is
                # forgotten below with the others
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
            donors = [p for p in paths_by_hash.get(file_hash, []) if p != str(path)]
            pending = _Pending(path, file_hash, generation, size, mtime_ns, record is None)
            pending.donors = donors
            todo.append(pending)

        self.index.discard_unpublished(str(p.path) for p in todo)
        group: list[_Pending] = []
        group_chunks = optimized_at = 0
        for pending in todo:
            stale = records.get(str(pending.path))
            try:
                self._split(pending, report, reporter)
            except UnreadableFileError as exc:
                # its bytes changed into something that cannot be indexed: the old passages
                # describe text the file no longer has, so they go
                self._fail(report, reporter, pending.path, str(exc), stale)
                continue
            if not pending.chunks:
                self._empty(pending, stale, report, reporter)
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

        # after the writes, so that a moved note's new path could reuse its old vectors
        written = [p for p in todo if p.is_new and p.chunks]
        moved_to = {p.file_hash: p.path for p in written}
        donated = {d: p.path for p in written for d in p.donors}
        self._forget(
            found,
            records,
            report,
            reporter,
            prune=prune,
            moved_to=moved_to,
            donated=donated,
            same_file=same_file,
        )
        if report.chunks_written or report.chunks_deleted:
            self.index.optimize()
        report.seconds = round(time.perf_counter() - began, 3)
        return report

    # --- steps -----------------------------------------------------------------------------
    def _one_note_per_file(
        self,
        found: Discovery,
        records: dict[str, FileRecord],
        report: IngestReport,
        reporter: Reporter,
    ) -> dict[str, Path]:
        """One file is one note, known by (st_dev, st_ino): a file found here that the index
        already holds at another path (reached then through a link, or a hard link) is not
        indexed twice. When that path lies outside this run's roots (another ingest's), the
        file is ingested at it and the path found here is named as passed over; otherwise the
        path found here is the note's, and the other is forgotten. Changes ``found.files``;
        returns the indexed paths to forget → the path kept."""
        found_paths = {str(p) for p in found.files}
        held: dict[tuple[int, int], list[str]] = {}
        for path_str in records:
            if path_str in found_paths:
                continue
            try:
                st = os.stat(path_str)  # follows links: the file the note's path reaches
            except OSError:
                continue
            held.setdefault((st.st_dev, st.st_ino), []).append(path_str)
        forget: dict[str, Path] = {}
        if not held:
            return forget
        files: list[Path] = []
        for path in found.files:
            key = found.ids.get(path)
            others = sorted(held.get(key, [])) if key is not None else []
            outside = [o for o in others if not _under(Path(o), found.roots)]
            keep = Path(outside[0]) if outside else path
            if keep != path:
                self._warn(report, reporter, path, self._same_file(keep, indexed=True))
            files.append(keep)
            forget.update({o: keep for o in others if o != str(keep)})
        found.files = sorted(set(files))
        return forget

    def _same_file(self, kept: Path, indexed: bool = False) -> str:
        shown = display_path(kept, self.settings.uploads_dir)
        where = "already indexed at that path" if indexed else "taken at that path"
        return (
            f"the same file as {shown} (reached by another path: a symbolic or hard link); "
            f"{where}, once"
        )

    def _fail(
        self,
        report: IngestReport,
        reporter: Reporter,
        path: Path,
        why: str,
        stale: FileRecord | None = None,
    ) -> None:
        """Report a file that could not be ingested. ``stale``: its record, when the file
        changed (or is refused) and its earlier passages must not stay citable; they are
        removed and the failure says so. The next ingest tries the file again."""
        if stale is not None:
            report.chunks_deleted += self.index.remove_file(stale.path)
            why += f" (its {_passages(stale.chunks)} from an earlier version were removed)"
        report.files_failed += 1
        shown = display_path(path, self.settings.uploads_dir)
        report.failures.append({"path": shown, "error": why})
        reporter.warn(f"skipped {shown}: {why}")
        reporter.advance()

    def _empty(
        self, pending: _Pending, stale: FileRecord | None, report: IngestReport, reporter: Reporter
    ) -> None:
        """A note with nothing to index: a warning, not a failure (an empty placeholder note is
        normal). Its earlier version's passages (``stale``: its record) are removed. No record
        is kept, so every later ingest warns again until it has text."""
        why = EMPTY
        if stale is not None:
            report.chunks_deleted += self.index.remove_file(stale.path)
            why += f"; its {_passages(stale.chunks)} from an earlier version were removed"
        report.files_empty += 1
        shown = display_path(pending.path, self.settings.uploads_dir)
        report.warnings.append({"path": shown, "warning": why})
        reporter.warn(f"{shown}: {why}")
        reporter.advance()

    def _warn(self, report: IngestReport, reporter: Reporter, path: Path, why: str) -> None:
        shown = display_path(path, self.settings.uploads_dir)
        report.warnings.append({"path": shown, "warning": why})
        reporter.warn(f"{shown}: {why}")

    def _unsupported(self, paths: Sequence[Path], report: IngestReport, reporter: Reporter) -> None:
        """Count the files of unsupported types, by extension, and name the first ones."""
        report.files_unsupported = len(paths)
        for path in paths:
            suffix = path.suffix.lower()
            report.unsupported_types[suffix] = report.unsupported_types.get(suffix, 0) + 1
        for path in paths[:UNSUPPORTED_NAMED]:
            shown = display_path(path, self.settings.uploads_dir)
            why = unsupported_reason(path)
            report.unsupported.append({"path": shown, "warning": why})
            reporter.warn(f"{shown}: {why}")
        if len(paths) > UNSUPPORTED_NAMED:
            reporter.warn(
                f"… and {len(paths) - UNSUPPORTED_NAMED:,} more files of unsupported types not "
                f"read ({unsupported_summary(report.unsupported_types)})"
            )

    def _duplicate(self, report: IngestReport, reporter: Reporter, path: Path, other: Path) -> None:
        shown = display_path(path, self.settings.uploads_dir)
        same_as = display_path(other, self.settings.uploads_dir)
        report.duplicates.append({"path": shown, "same_as": same_as})
        reporter.warn(f"{shown} has the same content as {same_as} (search shows it once)")

    def _split(self, pending: _Pending, report: IngestReport, reporter: Reporter) -> None:
        """Read and split one file into ``pending.chunks``; none when the note has nothing to
        index (0 bytes, blank, only front matter). Raises UnreadableFileError with a reason a
        person can act on when the file cannot be read."""
        if pending.size == 0:
            return
        try:
            document = read_document(pending.path)
        except UnreadableFileError as exc:
            # a file with no text (only white space, an emptied HTML body); an empty note
            # is the author's choice, not a fault of the file
            if isinstance(exc, EmptyDocumentError):
                return
            raise
        nodes: Sequence[BaseNode] = self.pipeline.run(documents=[document])
        source = display_path(pending.path, self.settings.uploads_dir)
        for warning in document.metadata.get("warnings", []):
            report.warnings.append({"path": source, "warning": warning})
            reporter.warn(f"{source}: {warning}")
        if not nodes:
            return
        pending.title = str(document.metadata.get("title", pending.path.stem))
        pending.tags = list(document.metadata.get("tags", []))
        pending.aliases = list(document.metadata.get("aliases", []))
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
            reuse: dict[str, Vectors] = {}
            # a content hash covers the text and the title and headings it is embedded with,
            # so a chunk of a moved or copied note may take the vectors of the same chunk at
            # the other path; its own earlier version's vectors come last and win
            for donor in pending.donors:
                reuse.update(self.index.existing_vectors(donor))
            if not pending.is_new:
                reuse.update(self.index.existing_vectors(str(pending.path)))
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

    def _forget(
        self,
        found: Discovery,
        records: dict[str, FileRecord],
        report: IngestReport,
        reporter: Reporter,
        *,
        prune: bool,
        moved_to: dict[str, Path],
        donated: dict[str, Path],
        same_file: dict[str, Path],
    ) -> None:
        """Forget the notes under this run's roots that the roots no longer hold: files gone
        from disk (deleted, renamed, moved; ``moved_to``: file hash → the path this run wrote
        with those bytes, named as the new place) and, with ``prune``, files still on disk that
        the walk no longer takes. ``donated``: old path → the new path this run wrote with its
        bytes (and vectors); such a note is forgotten as moved when its file is gone, under
        the roots or not. A note in a folder the walk could not list (``found.unlisted``) or
        behind a link whose target is missing is kept: it is not known to be gone.
        ``records``: the index's records before this run. Other records outside the roots are
        not looked at: an ingest of one folder never forgets another's notes still on disk. Each
        forgotten note is counted in ``files_deleted`` and named in ``forgotten``."""
        taken = {str(p) for p in (*found.files, *found.outside)}
        for path_str, kept in sorted(same_file.items()):  # one file, another path kept
            if path_str in records and path_str not in taken:
                shown = display_path(Path(path_str), self.settings.uploads_dir)
                reason = self._same_file(kept).replace("taken", "indexed")
                report.chunks_deleted += self.index.remove_file(path_str)
                report.files_deleted += 1
                report.forgotten.append({"path": shown, "reason": reason})
                reporter.warn(f"forgot {shown}: {reason}")
        for path_str, record in sorted(records.items()):
            if path_str in same_file:
                continue
            path = Path(path_str)
            under = any(path == root or root in path.parents for root in found.roots)
            # a note whose bytes this run wrote at a new path (its vectors were reused): forgotten
            # wherever it was, once its file is gone (the same bytes are indexed at the new path)
            if not under and path_str not in donated:
                continue
            if any(path == f or f in path.parents for f in found.unlisted):
                continue  # in a folder that could not be listed: not known to be gone (warned)
            if file_is_gone(path):  # gone (or replaced by a folder of that name)
                target = moved_to.get(record.file_hash) or donated.get(path_str)
                reason = (
                    f"moved to {display_path(target, self.settings.uploads_dir)}"
                    if target is not None
                    else "file is gone"
                )
            elif not under:
                continue
            elif prune and path_str not in taken:
                reason = "no longer taken from these paths (hidden, or in a .shioriignore)"
            else:
                continue
            report.chunks_deleted += self.index.remove_file(path_str)
            report.files_deleted += 1
            shown = display_path(path, self.settings.uploads_dir)
            report.forgotten.append({"path": shown, "reason": reason})
            reporter.warn(f"forgot {shown}: {reason}")


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def file_is_gone(path: Path) -> bool:
    """Whether a note's file is known to be gone: no such path, or no longer a regular file. A
    path that cannot be looked at (permissions) or a link whose target is missing (a mount that
    is offline) is not known to be gone."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        # a dangling link, at the note or at a folder above it, says nothing of the note
        return not any(os.path.islink(p) and not os.path.exists(p) for p in (path, *path.parents))
    except OSError:
        return False
    return not S_ISREG(st.st_mode)


def unsupported_reason(path: Path) -> str:
    """Why a file met in a folder walk is not read: its type, by its extension."""
    kind = f"a {path.suffix} file" if path.suffix else "a file without an extension"
    return f"not read: {kind} (notes are read from Markdown, text, HTML and PDF files)"


def unsupported_summary(types: dict[str, int]) -> str:
    """``{".png": 3, "": 1}`` → ``".png 3, no extension 1"``, most frequent first."""
    ordered = sorted(types.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{suffix or 'no extension'} {n:,}" for suffix, n in ordered)


def _passages(n: int) -> str:
    return f"{n} passage{'' if n == 1 else 's'}"


def embed_title(chunk: Chunk) -> str:
    """The document 'title' given to the embedding model: note title and heading path."""
    parts = [chunk.title, *[h for h in chunk.headings if h != chunk.title]]
    return " > ".join(p for p in parts if p)


def sparse_text(chunk: Chunk) -> str:
    """Headings and aliases count as text for keyword matching, too; links as their labels."""
    names = " ".join([embed_title(chunk), *chunk.aliases])
    return f"{names}\n{readable(chunk.text)}"
