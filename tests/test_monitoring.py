"""Issue 17 (2, 3): the alert rules pass `promtool test rules`, every alert has a Vietnamese summary
and a runbook section, and every query of the Grafana dashboard and of the rules names only metrics
that the services really expose (read from their /metrics, the five apps running in-process)."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.flow import embedded_system, walking_skeleton

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS = REPO / "deploy" / "prometheus"
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "sangkien.json"

# Series Prometheus makes itself, not the services.
PROMETHEUS_OWN = {"up"}
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
    "inf", "nan",
}  # fmt: skip


def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make test` installs it (scripts/ensure-tools.sh, Debian's prometheus)"
    return found


def test_alert_rules_pass_promtool_unit_tests() -> None:
    tool = promtool()
    check = subprocess.run([tool, "check", "rules", "alerts.yml"], cwd=PROMETHEUS, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    run = subprocess.run([tool, "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_alert_has_a_vietnamese_summary_a_runbook_section_and_a_test() -> None:
    alerts = [r for r in _rules() if "alert" in r]
    names = {r["alert"] for r in alerts}
    # The troubles issue 17 names, one alert each at least.
    assert {
        "SangkienServiceDown",
        "SangkienHighErrorRatio",
        "SangkienHighLatencyP99",
        "SangkienQueueGrowing",
        "SangkienOutboxStale",
        "SangkienDeadLetters",
        "SangkienDbPoolSaturated",
        "SangkienIntakeStalled",
    } <= names
    runbook = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^### (\w+)$", runbook, re.M))
    tests = (PROMETHEUS / "alerts_test.yml").read_text(encoding="utf-8")
    for rule in alerts:
        summary = rule["annotations"]["summary"]
        assert re.search(r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", summary), summary
        assert rule["annotations"]["runbook_url"] == f"docs/operations.md#{rule['alert'].lower()}"
        assert rule["alert"] in headings, f"no runbook section for {rule['alert']}"
        assert rule["labels"]["severity"] in ("page", "ticket")
        assert f"alertname: {rule['alert']}" in tests, f"{rule['alert']} has no promtool test"
    section = runbook.split("### SangkienDeadLetters", 1)[1].split("###", 1)[0]
    assert "sangkien ops dead-letters replay" in section


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: bare names, and each alternative of a
    ``{__name__=~"prefix_(a|b)_suffix"}`` selector."""
    names: set[str] = set()
    for pattern in re.findall(r'__name__=~"([^"]+)"', expr):
        match = re.fullmatch(r"([a-z0-9_]*)\(([a-z0-9_|]+)\)([a-z0-9_]*)", pattern)
        assert match, f"unsupported __name__ pattern {pattern!r}"
        names |= {f"{match[1]}{alt}{match[3]}" for alt in match[2].split("|")}
    bare = re.sub(r"\{[^}]*\}", " ", expr)  # label matchers
    bare = re.sub(r'"[^"]*"', " ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)  # ranges
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    for token in re.finditer(r"(?<![\w.])[a-zA-Z_:][a-zA-Z0-9_:]*", bare):
        word = token.group(0)
        end = token.end()
        if bare[end:].lstrip().startswith("("):
            continue  # a function
        if word.lower() in PROMQL_WORDS or ":" in word:  # recording rules are checked through their sources
            continue
        names.add(word)
    return names


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'sum by (service) (rate({__name__=~"sangkien_(intake|tally)_x_total", status=~"5.."}[5m])) '
        '/ on (service) max(sangkien_y{a="b"}) and on () hour() > 7 or sangkien:z'
    )
    assert metric_names(expr) == {"sangkien_intake_x_total", "sangkien_tally_x_total", "sangkien_y"}


def _dashboard_queries() -> list[str]:
    import json

    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            queries.append(re.sub(r"^label_values\((\w+),.*$", r"\1", var["definition"]))
    assert len(queries) >= 20
    return queries


def test_the_dashboard_file_is_what_its_builder_writes() -> None:
    import runpy

    builder = runpy.run_path(str(GRAFANA / "build_dashboard.py"))
    assert DASHBOARD.read_text(encoding="utf-8") == builder["render"](), "run deploy/grafana/build_dashboard.py"
    titles = " ".join(p["title"] for p in builder["dashboard"]()["panels"])
    for words in ("Sáng kiến tiếp nhận", "hàng đợi", "cũ nhất", "5xx", "p99", "chỉ tiêu"):
        assert words in titles


def test_compose_provisions_grafana_with_prometheus_and_the_dashboard() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    grafana = compose["grafana"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_PASSWORD:?")
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (ds,) = datasource["datasources"]
    assert ds["type"] == "prometheus" and ds["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "sangkien.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    prometheus = compose["prometheus"]
    assert prometheus["volumes"] == ["./deploy/prometheus:/etc/prometheus:ro"]
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "summary": ("_count", "_sum")}


@pytest.fixture
async def exposed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, set[str]]:
    """The metric names the five apps expose after the walking skeleton ran through them: those with a
    sample (``sampled``), and those declared (``declared``: a labelled counter nobody incremented yet,
    such as awards' published events, is declared with its HELP and TYPE but has no sample)."""
    import tally.runtime

    monkeypatch.setattr(tally.runtime, "PROGRESS_INTERVAL_S", 0.2)
    sampled: set[str] = set()
    declared: set[str] = set()
    async with embedded_system(tmp_path, ops_sample_interval_s=0.2) as (client, apps):
        await walking_skeleton(client)
        await asyncio.sleep(0.5)  # a round of tally's province figures after the skeleton's decision
        texts = []
        for app in apps.values():
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as svc:
                texts.append((await svc.get("/metrics")).text)
    for text in texts:
        for family in text_string_to_metric_families(text):
            sampled |= {s.name for s in family.samples}
            declared |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return {"sampled": sampled, "declared": declared | sampled}


async def test_every_dashboard_and_alert_query_names_only_exposed_metrics(exposed: dict[str, set[str]]) -> None:
    sampled = exposed["sampled"]
    for name in (
        "sangkien_tally_province_valid_initiatives",
        "sangkien_tally_initiatives_decided_total",
        "sangkien_intake_initiatives_accepted_total",
        "sangkien_review_queue_messages_ready",
        "sangkien_gateway_http_request_duration_seconds_bucket",
    ):
        assert name in sampled, name
    queries = _dashboard_queries() + [r["expr"] for r in _rules()]
    used: set[str] = set()
    for query in queries:
        names = metric_names(query)
        missing = names - exposed["declared"] - PROMETHEUS_OWN
        assert not missing, f"{query!r} names metrics no service exposes: {sorted(missing)}"
        used |= names
    # The panels draw the signals issue 17 asks for.
    for wanted in (
        "sangkien_tally_queue_messages_ready",
        "sangkien_tally_consumer_oldest_unhandled_age_seconds",
        "sangkien_intake_outbox_oldest_age_seconds",
        "sangkien_review_dead_letter_messages",
        "sangkien_gateway_http_request_duration_seconds_bucket",
        "sangkien_awards_db_pool_connections_in_use",
        "sangkien_tally_initiatives_submitted_total",
        "sangkien_tally_province_quota_initiatives",
    ):
        assert wanted in used, wanted
