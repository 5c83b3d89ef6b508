"""Which files an ingest looks at: recursive walk, supported types, ignore files.

Hidden files and folders are skipped. A folder may hold a ``.shioriignore`` file with one
glob pattern per line (``#`` starts a comment), matched against paths relative to that folder
and against bare names; a pattern ending in ``/`` matches folders.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ingest.readers import SUPPORTED

IGNORE_FILE = ".shioriignore"


@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)  # absolute, resolved, sorted, unique
    roots: list[Path] = field(default_factory=list)  # the folders and files asked for
    unsupported: list[Path] = field(default_factory=list)  # skipped in folder walks
    missing: list[str] = field(default_factory=list)  # arguments that do not exist
    outside: list[Path] = field(default_factory=list)  # links that lead out of `confine_to`


def _read_patterns(folder: Path) -> list[str]:
    ignore = folder / IGNORE_FILE
    if not ignore.is_file():
        return []
    lines = ignore.read_text(encoding="utf-8", errors="replace").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _ignored(rel: str, is_dir: bool, patterns: list[tuple[Path, list[str]]], path: Path) -> bool:
    for base, pats in patterns:
        try:
            rel_to_base = path.relative_to(base).as_posix()
        except ValueError:
            continue
        name = path.name
        for pat in pats:
            if pat.endswith("/"):
                folder = pat[:-1]
                if is_dir and (
                    fnmatch.fnmatch(rel_to_base, folder) or fnmatch.fnmatch(name, folder)
                ):
                    return True
            elif fnmatch.fnmatch(rel_to_base, pat) or fnmatch.fnmatch(name, pat):
                return True
    return False


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
        patterns: list[tuple[Path, list[str]]] = []
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            own = _read_patterns(here)
            if own:
                patterns.append((here, own))
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(".") and not _ignored(d, True, patterns, here / d)
            )
            for name in sorted(filenames):
                path = here / name
                if name.startswith(".") or _ignored(name, False, patterns, path):
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
