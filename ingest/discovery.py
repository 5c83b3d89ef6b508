"""Which files an ingest looks at: recursive walk, supported types, ignore files.

Hidden files and folders are skipped. A folder may hold a ``.shioriignore`` file with one
glob pattern per line (``#`` starts a comment), matched against paths relative to that folder
and against bare names; a pattern ending in ``/`` matches folders.
"""

from __future__ import annotations

import fnmatch
import os
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


def discover(arguments: list[str | Path]) -> Discovery:
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
    found.files.sort()
    return found
