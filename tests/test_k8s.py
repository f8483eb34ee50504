"""Issue 17 (4): the Kubernetes manifests (deploy/k8s), a kustomize base and a production overlay,
rendered (tests/kustomize.py, checked against ``kubectl kustomize`` where one is installed) and
validated with kubernetes-validate; then the properties the issue asks for, resource by resource."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from shared.settings import ServiceSettings
from tests.kustomize import build

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
BASE, PRODUCTION = K8S / "base", K8S / "overlays" / "production"
KUBERNETES_VERSION = "1.30.0"
SERVICES = {"gateway": 8000, "intake": 8001, "review": 8002, "tally": 8003, "awards": 8004}
WITH_DATABASE = ("intake", "review", "tally", "awards")
# Custom resources of the operators: kubernetes-validate has no schema for them (checked below by hand).
OPERATOR_KINDS = {("postgresql.cnpg.io/v1", "Cluster"), ("rabbitmq.com/v1beta1", "RabbitmqCluster")}


def by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return build(PRODUCTION)


def _key(resource: dict[str, Any]) -> tuple[str, str, str]:
    return resource["kind"], resource["metadata"].get("namespace", ""), resource["metadata"]["name"]


@pytest.mark.parametrize("directory", [BASE, PRODUCTION], ids=["base", "production"])
def test_python_rendering_matches_kustomize_where_installed(directory: Path) -> None:
    mine = {_key(r): r for r in build(directory)}
    assert len(mine) >= 20
    binary = shutil.which("kustomize") or shutil.which("kubectl")
    if binary is None:
        pytest.skip("no kustomize or kubectl here: the Python rendering alone is validated")
    args = [binary, "build", str(directory)] if binary.endswith("kustomize") else [binary, "kustomize", str(directory)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    theirs = {_key(r): r for r in yaml.safe_load_all(out) if r}
    assert mine.keys() == theirs.keys()
    for key, resource in mine.items():
        assert resource == theirs[key], key


@pytest.mark.parametrize("directory", [BASE, PRODUCTION], ids=["base", "production"])
def test_every_manifest_validates_with_kubernetes_validate(directory: Path) -> None:
    validated = 0
    for resource in build(directory):
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
            validated += 1
        except kubernetes_validate.SchemaNotFoundError:
            assert (resource["apiVersion"], resource["kind"]) in OPERATOR_KINDS, _key(resource)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{_key(resource)}: {exc.message} at {list(exc.path)}") from exc
    assert validated >= 20


def test_kubernetes_validate_catches_a_broken_manifest() -> None:
    deployment = by_kind(build(BASE), "Deployment")["intake"]
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["port"] = {"no": 1}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_replicas_probes_resources_and_graceful_termination(production: list[dict[str, Any]]) -> None:
    deployments = by_kind(production, "Deployment")
    replicas = {name: deployments[name]["spec"]["replicas"] for name in SERVICES}
    assert all(replicas[s] >= 2 for s in ("gateway", "intake", "review", "tally")), replicas
    assert replicas["awards"] == 1
    for name, port in SERVICES.items():
        pod = deployments[name]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["image"] == "ghcr.io/sangkien/sangkien:0.1.0"
        assert container["command"][:3] == ["sangkien", "serve", name] and container["command"][-1] == str(port)
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
        assert pod["terminationGracePeriodSeconds"] >= 5 + 20 + 10  # preStop + requests + drain
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) <= set(c["resources"]["limits"]), (name, c)
        annotations = deployments[name]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(port)
    intake = deployments["intake"]["spec"]["template"]["spec"]["containers"][0]
    assert intake["resources"]["limits"]["memory"] == "1536Mi"  # the overlay's patch
    assert intake["livenessProbe"]["periodSeconds"] == 10  # ...merged into the base, not replacing it


def _mib(quantity: str) -> int:
    units = {"Mi": 1, "Gi": 1024}
    return int(quantity[:-2]) * units[quantity[-2:]]


@pytest.mark.parametrize("directory", [BASE, PRODUCTION], ids=["base", "production"])
def test_reviews_similarity_memory_fits_its_pod_with_room_for_the_process(directory: Path) -> None:
    """SIMILARITY_MEMORY_MB (index and shingle sets) plus the process's own ~150 MiB and its requests' stay within
    the pod's memory limit: otherwise a campaign's growth would get the pod OOM-killed instead of trimming the sets."""
    from review.settings import ReviewSettings

    review = by_kind(build(directory), "Deployment")["review"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in review["env"]}
    budget = ReviewSettings(SIMILARITY_MEMORY_MB=env["SIMILARITY_MEMORY_MB"]).similarity_memory_mb  # type: ignore[call-arg]
    assert budget + 150 + 100 <= _mib(review["resources"]["limits"]["memory"]), (budget, review["resources"])
    if directory == PRODUCTION:
        assert review["resources"]["limits"]["memory"] == "2Gi" and budget == 1700  # issue 13: 2 GB a replica


def test_budgets_and_autoscalers(production: list[dict[str, Any]]) -> None:
    budgets = by_kind(production, "PodDisruptionBudget")
    for name in SERVICES:
        assert budgets[name]["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        assert budgets[name]["spec"]["maxUnavailable"] == 1
    scalers = by_kind(production, "HorizontalPodAutoscaler")
    assert set(scalers) == {"intake", "gateway"}
    for name, hpa in scalers.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] == 20
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_secrets_come_from_secret_objects_and_the_placeholder_is_refused(production: list[dict[str, Any]]) -> None:
    for resource in production:
        if resource["kind"] not in ("Deployment", "Job"):
            continue
        pod = resource["spec"]["template"]["spec"]
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            env = {e["name"]: e for e in c.get("env", [])}
            for secret in ("JWT_SECRET", "AMQP_PASSWORD", *(["DB_PASSWORD"] if "DATABASE_URL" in env else [])):
                if secret in env:
                    assert "value" not in env[secret], (resource["metadata"]["name"], secret)
                    assert env[secret]["valueFrom"]["secretKeyRef"]["name"]
    app_secret = by_kind(production, "Secret")["sangkien-app"]
    with pytest.raises(ValueError, match="32 characters"):
        ServiceSettings(environment="production", jwt_secret=app_secret["stringData"]["JWT_SECRET"])
    config = by_kind(production, "ConfigMap")["sangkien-config"]["data"]
    assert config["ENVIRONMENT"] == "production"


def test_a_migration_job_per_service_runs_before_its_deployment(production: list[dict[str, Any]]) -> None:
    jobs = by_kind(production, "Job")
    deployments = by_kind(production, "Deployment")
    assert set(jobs) == {f"{name}-migrate" for name in WITH_DATABASE}
    for name in WITH_DATABASE:
        (container,) = jobs[f"{name}-migrate"]["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["sangkien", "migrate", name]
        env = {e["name"]: e for e in container["env"]}
        assert env["DATABASE_URL"]["value"].endswith(f"/sangkien_{name}")
        (wait,) = deployments[name]["spec"]["template"]["spec"]["initContainers"]
        assert wait["command"][:4] == ["sangkien", "migrate", name, "--wait"]


def test_postgresql_and_rabbitmq_come_from_their_operators(production: list[dict[str, Any]]) -> None:
    (pg,) = [r for r in production if r["kind"] == "Cluster"]
    assert pg["apiVersion"] == "postgresql.cnpg.io/v1" and pg["spec"]["instances"] >= 3
    created = {pg["spec"]["bootstrap"]["initdb"]["database"]} | {
        sql.split()[2] for sql in pg["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"]
    }
    assert created == {f"sangkien_{name}" for name in WITH_DATABASE}
    (mq,) = [r for r in production if r["kind"] == "RabbitmqCluster"]
    assert mq["apiVersion"] == "rabbitmq.com/v1beta1" and mq["spec"]["replicas"] >= 3
    config = by_kind(production, "ConfigMap")["sangkien-config"]["data"]
    # The services reach them by the names the operators give their Services and Secrets.
    assert config["DB_HOST"] == f"{pg['metadata']['name']}-rw"
    assert config["AMQP_HOST"] == mq["metadata"]["name"]
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for d in by_kind(production, "Deployment").values()
        for c in d["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
        if "valueFrom" in e
    }
    assert refs == {f"{pg['metadata']['name']}-app", f"{mq['metadata']['name']}-default-user", "sangkien-app"}
    assert {r["metadata"].get("namespace") for r in production if r["kind"] != "Namespace"} == {"sangkien"}
