"""Which files an ingest looks at: recursive walk, supported types, ignore files.

Hidden files and folders are skipped. Any folder may hold a ``.shioriignore`` file written like a
``.gitignore`` and read with gitignore's rules (by pathspec): patterns are relative to that
folder, ``*`` stays within a folder and ``**`` crosses them, a pattern with a ``/`` at its start
or in its middle is anchored to that folder, one ending in ``/`` matches only folders, ``!``
re-includes what an earlier pattern excluded, and ``#`` starts a comment (spaces around a
pattern are ignored). An ignore file deeper
down overrides the ones above it; as in git, nothing inside an ignored folder can be re-included.
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


def discover(arguments: list[str | Path], confine_to: Sequence[Path] = ()) -> Discovery:
    """The files to ingest. With ``confine_to``, a file whose real path (symbolic links
    followed) lies outside those folders is set aside in ``outside``."""
    found = Discovery()
    seen: set[Path] = set()
    for arg in arguments:
        root = Path(arg).expanduser()
        if not root.exists():
            found.missing.append(str(arg))
            continue
        root = root.resolve()
        found.roots.append(root)
        if root.is_file():
            if root not in seen:
                seen.add(root)
                found.files.append(root)
            continue
        specs: dict[Path, pathspec.GitIgnoreSpec] = {}
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            own = _read_spec(here)
            if own is not None:
                specs[here] = own
            # the ignore files of this folder and the folders above it, outermost first
            active = [(base, spec) for base, spec in specs.items() if here.is_relative_to(base)]
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(".") and not _ignored(here / d, True, active)
            )
            for name in sorted(filenames):
                path = here / name
                if name.startswith(".") or _ignored(path, False, active):
                    continue
                if path.suffix.lower() not in SUPPORTED:
                    found.unsupported.append(path)
                elif path not in seen:
                    seen.add(path)
                    found.files.append(path)
    if confine_to:
        roots = [r.resolve() for r in confine_to]
        inside = [f for f in found.files if any(f.resolve().is_relative_to(r) for r in roots)]
        found.outside = [f for f in found.files if f not in set(inside)]
        found.files = inside
    found.files.sort()
    return found
