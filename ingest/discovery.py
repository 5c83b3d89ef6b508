"""Which files an ingest looks at: recursive walk, supported types, ignore files.

Hidden files and folders are skipped. Any folder may hold a ``.shioriignore`` file written like a
``.gitignore`` and read with gitignore's rules (by pathspec): patterns are relative to that
folder, ``*`` stays within a folder and ``**`` crosses them, a pattern with a ``/`` at its start
or in its middle is anchored to that folder, one ending in ``/`` matches only folders, ``!``
re-includes what an earlier pattern excluded, and ``#`` starts a comment (spaces around a
pattern are ignored). An ignore file deeper
down overrides the ones above it; as in git, nothing inside an ignored folder can be re-included.

Symbolic links to folders are followed, as ``find -L`` and Obsidian do (people link course
material or a synced folder into their notes): each folder is walked once, known by its
``(st_dev, st_ino)``, so a link back up the tree (a loop) or a second link to the same folder is
not followed again. Links are followed only after every plain folder has been walked, so a note
reachable both directly and through a link is found at its direct path. With ``confine_to`` (the
service), a link to a folder outside those folders is not followed. What the walk would not
take at its own place is not taken through a link either, whatever the link is called and
wherever it is: a link (to a folder or a note) whose target is hidden below a root, or excluded
by an ignore file this walk read (of its own root or another), is passed over like the target
itself. Whatever is not walked
(loops, links leading out, folders that cannot be listed, links whose target is missing) is
named in ``Discovery.skipped`` with the reason: a skipped subtree never looks like a complete
walk, and the ones whose contents could not be known are also in ``Discovery.unlisted``.

One file is one note, known by the ``(st_dev, st_ino)`` its path resolves to: a file reached by
several paths (a symbolic link to it, a hard link, a linked folder also given as a root) is
taken once, at the first path free of links in walk order, and the others are named in
``Discovery.same_file``. (The ingest applies the same rule against the paths already indexed.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pathspec

from ingest.readers import SUPPORTED

IGNORE_FILE = ".shioriignore"


@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)  # absolute, resolved, sorted, unique
    roots: list[Path] = field(default_factory=list)  # the folders and files asked for
    unsupported: list[Path] = field(default_factory=list)  # skipped in folder walks
    missing: list[str] = field(default_factory=list)  # arguments that do not exist
    outside: list[Path] = field(default_factory=list)  # links that lead out of `confine_to`
    # folders not walked, with the reason (a loop, a link out of `confine_to`, unreadable)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    # of those, the ones whose contents could not be known (a folder that cannot be listed, a
    # link whose target is missing: unmounted, offline): an ingest keeps the notes it already
    # has from them, since "not listed" is not "gone"
    unlisted: list[Path] = field(default_factory=list)
    # one file reached by several paths (a symbolic link to it, a hard link, a linked folder):
    # (the path passed over, the path it is taken at), the latter preferably free of links
    same_file: list[tuple[Path, Path]] = field(default_factory=list)
    # each file's identity, (st_dev, st_ino) of what its path resolves to
    ids: dict[Path, tuple[int, int]] = field(default_factory=dict)


def _read_spec(folder: Path) -> pathspec.GitIgnoreSpec | None:
    ignore = folder / IGNORE_FILE
    if not ignore.is_file():
        return None
    lines = ignore.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    # unlike git, spaces around a pattern are dropped (an indented pattern means the pattern)
    return pathspec.GitIgnoreSpec.from_lines(line.strip() for line in lines)


def _ignored(path: Path, is_dir: bool, specs: list[tuple[Path, pathspec.GitIgnoreSpec]]) -> bool:
    """The last ignore file (deepest) with a pattern that decides, decides."""
    verdict = False
    for base, spec in specs:
        try:
            rel = path.relative_to(base).as_posix()
        except ValueError:
            continue
        result = spec.check_file(rel + "/" if is_dir else rel)
        if result.include is not None:
            verdict = result.include
    return verdict


LOOP = (
    "a symbolic link to a folder already walked (a loop, or a second link to it): "
    "not followed again"
)
OUTSIDE = "a symbolic link to a folder outside the folders this service may read: not followed"
KEPT = "notes already indexed from it are kept"
TARGET_MISSING = f"link target missing (unmounted, offline or deleted): not followed; {KEPT}"


@dataclass
class _Walk:
    """The state of one discovery's walk, shared by its roots."""

    found: Discovery
    allowed: list[Path]  # resolved `confine_to`; empty: any folder may be followed
    walked: set[tuple[int, int]] = field(default_factory=set)  # (st_dev, st_ino) of folders
    # (folder, the ignore files of its root): plain folders now, linked ones after them
    now: list[tuple[Path, dict[Path, pathspec.GitIgnoreSpec]]] = field(default_factory=list)
    links: list[tuple[Path, dict[Path, pathspec.GitIgnoreSpec]]] = field(default_factory=list)
    # every ignore file read in this walk, by the real path of its folder, shallowest first:
    # what a link leads to is checked against them as well as the link's own path
    ignores: dict[Path, pathspec.GitIgnoreSpec] = field(default_factory=dict)
    real_roots: list[Path] = field(default_factory=list)  # the folders asked for, resolved
    # files found: (path, identity or None when it cannot be known, reached through a link)
    candidates: list[tuple[Path, tuple[int, int] | None, bool]] = field(default_factory=list)

    def take(self, path: Path, through_link: bool) -> None:
        try:
            st = path.stat()  # follows links: the file itself
            key: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:  # a broken link: reading it fails later, named
            key = None
        self.candidates.append((path, key, through_link))

    def settle(self) -> None:
        """One path per file: of the paths to one file, the first free of links in walk
        order (else the first); the others go to ``same_file``."""
        kept: dict[tuple[int, int], Path] = {}
        paths: set[Path] = set()
        order = sorted(range(len(self.candidates)), key=lambda i: (self.candidates[i][2], i))
        for i in order:
            path, key, _ = self.candidates[i]
            if path in paths:
                continue
            if key is not None and key in kept:
                if kept[key] != path:
                    self.found.same_file.append((path, kept[key]))
                continue
            paths.add(path)
            if key is not None:
                kept[key] = path
                self.found.ids[path] = key
            self.found.files.append(path)
        self.found.same_file.sort()

    def excluded(self, real: Path, is_dir: bool) -> bool:
        """Whether the walk would not take ``real`` (a resolved path) at its own place: hidden
        below a root, or excluded by an ignore file read in this walk (itself, or a folder
        above it: nothing inside an ignored folder is taken)."""
        for root in self.real_roots:
            if real.is_relative_to(root) and any(
                part.startswith(".") for part in real.relative_to(root).parts
            ):
                return True
        if not self.ignores:
            return False
        chain = [*reversed(real.parents), real]
        for n, step in enumerate(chain):
            specs = [
                (base, spec)
                for base, spec in self.ignores.items()
                if step != base and step.is_relative_to(base)
            ]
            if specs and _ignored(step, is_dir or n < len(chain) - 1, specs):
                return True
        return False

    def run(self) -> None:
        while self.now or self.links:
            if not self.now:  # every plain folder is done: follow the links found meanwhile
                self.now, self.links = self.links[::-1], []
            folder, specs = self.now.pop()
            self.visit(folder, specs)

    def visit(self, here: Path, specs: dict[Path, pathspec.GitIgnoreSpec]) -> None:
        is_link = here.is_symlink()
        try:
            st = here.stat()  # follows the link: the folder itself
        except OSError as exc:
            why = f"cannot open this folder: {exc.strerror or exc}; {KEPT}"
            self.found.skipped.append((here, why))
            self.found.unlisted.append(here)
            return
        key = (st.st_dev, st.st_ino)
        if key in self.walked:
            # only a link can lead to a walked folder a second time (a plain folder is reached
            # once, or as a second root that overlaps the first: its notes are in already)
            if is_link:
                self.found.skipped.append((here, LOOP))
            return
        real = here.resolve()  # the folder's own place (``here`` when no link leads to it)
        # why: the service reads only inside its allowed roots; a link is no way out
        if is_link and self.allowed and not any(real.is_relative_to(r) for r in self.allowed):
            self.found.skipped.append((here, OUTSIDE))
            return
        if real != here and self.excluded(real, True):
            return  # hidden or ignored where it is: a link to it does not take it either
        self.walked.add(key)
        try:
            with os.scandir(here) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:  # os.walk would drop it silently
            why = f"cannot list this folder: {exc.strerror or exc}; {KEPT}"
            self.found.skipped.append((here, why))
            self.found.unlisted.append(here)
            return
        own = _read_spec(here)
        if own is not None:
            specs[here] = own
            self.ignores.setdefault(real, own)
            self.ignores = dict(sorted(self.ignores.items(), key=lambda kv: len(kv[0].parts)))
        # the ignore files of this folder and the folders above it, outermost first
        active = [(base, spec) for base, spec in specs.items() if here.is_relative_to(base)]
        for entry in entries:
            path = here / entry.name
            if entry.name.startswith("."):
                continue
            if entry.is_dir():  # a folder, or a link to one
                if not _ignored(path, True, active):
                    (self.links if entry.is_symlink() else self.now).append((path, specs))
                continue
            # a dangling link not named as a note: most likely a folder gone offline
            dangling = entry.is_symlink() and not os.path.exists(path)
            if dangling and path.suffix.lower() not in SUPPORTED:
                if not _ignored(path, True, active):
                    self.found.skipped.append((path, TARGET_MISSING))
                    self.found.unlisted.append(path)
                continue
            if _ignored(path, False, active):
                continue
            if (real != here or entry.is_symlink()) and self.excluded(
                _real_file(real / entry.name), False
            ):
                continue  # a link to a note that is hidden or ignored where it is
            if path.suffix.lower() not in SUPPORTED:
                self.found.unsupported.append(path)
            else:  # (a broken link too: reading it then fails, named)
                self.take(path, real != here or entry.is_symlink())


def _real_file(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a loop of links: reading it fails later, named
        return path


def discover(arguments: list[str | Path], confine_to: Sequence[Path] = ()) -> Discovery:
    """The files to ingest, found under ``arguments`` (files or folders).

    Folders are walked recursively, following symbolic links to folders once each (see the
    module's doc). With ``confine_to``, a linked folder whose real path lies outside those
    folders is not entered, and a file whose real path (symbolic links followed) lies outside
    them is set aside in ``outside``. Never raises for a missing argument (``missing``) or a
    folder that cannot be listed (``skipped``)."""
    found = Discovery()
    walk = _Walk(found, [r.resolve() for r in confine_to])
    walk.real_roots = [Path(a).expanduser().resolve() for a in arguments]
    for arg in arguments:
        root = Path(arg).expanduser()
        if not root.exists():
            found.missing.append(str(arg))
            continue
        root = root.resolve()
        found.roots.append(root)
        if root.is_file():
            walk.take(root, False)
            continue
        walk.now.insert(0, (root, {}))  # roots in the order given (the stack pops its end)
    walk.run()
    walk.settle()
    if walk.allowed:
        inside = [
            f for f in found.files if any(f.resolve().is_relative_to(r) for r in walk.allowed)
        ]
        found.outside = [f for f in found.files if f not in set(inside)]
        found.files = inside
    found.files.sort()
    return found
