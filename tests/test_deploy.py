"""docker-compose.yml, deploy/ and the README are checked by parsing them (no Docker engine runs here)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from shared.topology import QUEUES

REPO = Path(__file__).resolve().parents[1]
SERVICES = {"intake": 8001, "review": 8002, "tally": 8003, "awards": 8004, "gateway": 8000}


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_runs_every_service_healthy_after_its_infrastructure() -> None:
    services = _compose()["services"]
    assert {"postgres", "rabbitmq", "redis", "prometheus", *SERVICES} <= set(services)
    assert "management" in services["rabbitmq"]["image"]
    for infra in ("postgres", "rabbitmq", "redis"):
        assert services[infra]["healthcheck"]["test"], infra
    for name, port in SERVICES.items():
        svc = services[name]
        assert svc["command"][:3] == ["sangkien", "serve", name]
        assert svc["command"][-1] == str(port)
        assert f"127.0.0.1:{port}/health" in " ".join(svc["healthcheck"]["test"])
        deps = svc["depends_on"]
        for infra in ("postgres", "rabbitmq", "redis"):
            assert deps[infra] == {"condition": "service_healthy"}, (name, infra)
        env = svc["environment"]
        assert env["ENVIRONMENT"] == "production"
        assert env["JWT_SECRET"].startswith("${JWT_SECRET:?"), "no default secret outside development"
        if name != "gateway":
            assert env["DATABASE_URL"].endswith(f"/sangkien_{name}"), "one database per service"
    for name in ("intake", "review", "tally", "awards"):
        assert services["gateway"]["depends_on"][name] == {"condition": "service_healthy"}
        assert services["gateway"]["environment"][f"{name.upper()}_URL"] == f"http://{name}:{SERVICES[name]}"


def test_every_service_database_is_created_and_scraped() -> None:
    init = (REPO / "deploy" / "postgres-init.sql").read_text()
    for name in ("intake", "review", "tally", "awards"):
        assert f"CREATE DATABASE sangkien_{name};" in init
    prom = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    for name, port in SERVICES.items():
        assert f"{name}:{port}" in targets
    mounted = _compose()["services"]["prometheus"]["volumes"][0]
    assert mounted.startswith("./deploy/prometheus:/etc/prometheus")


def test_dockerfile_installs_the_project_and_runs_unprivileged() -> None:
    docker = (REPO / "deploy" / "Dockerfile").read_text()
    assert "pip install --no-cache-dir ." in docker and "USER sangkien" in docker
    for path in ("shared", "services", "pyproject.toml", "sangkien_cli.py"):
        assert path in docker


def test_dependencies_are_pinned() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + project["optional-dependencies"]["test"]
    for dep in deps:
        assert re.search(r"==\d", dep), f"unpinned: {dep}"


def test_readme_commands_exist_and_topology_lists_real_services() -> None:
    readme = (REPO / "README.md").read_text()
    makefile = (REPO / "Makefile").read_text()
    for target in ("run", "test"):
        assert f"make {target}" in readme
        assert re.search(rf"^{target}:", makefile, re.M)
    assert "make test" in (REPO / ".ci" / "run").read_text()
    for service in QUEUES:
        assert (REPO / "services" / service / service / "app.py").exists()
