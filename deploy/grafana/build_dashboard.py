"""Writes deploy/grafana/dashboards/sangkien.json, the operators' Grafana dashboard (issue 17).

`python deploy/grafana/build_dashboard.py` after a change; tests/test_monitoring.py checks that the
file is what this script writes and that every query names only metrics the services expose.
Panels: the flow of initiatives, queue depth and lag per service, errors, latency, the pool, and
per-province progress against quota.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "dashboards" / "sangkien.json"
CONSUMERS = "intake|review|tally|awards"
ALL = f"gateway|{CONSUMERS}"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def each(metric: str, services: str = CONSUMERS) -> str:
    """A selector of ``sangkien_<service>_<metric>`` across services (each series has a ``service`` label)."""
    return f'{{__name__=~"sangkien_({services})_{metric}"}}'


def panel(
    title: str,
    targets: list[tuple[str, str]],
    *,
    unit: str = "short",
    kind: str = "timeseries",
    width: int = 8,
    description: str = "",
) -> dict[str, Any]:
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"w": width, "h": 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "gridPos": {"w": 24, "h": 1}, "panels": []}


def panels() -> list[dict[str, Any]]:
    quota_filter = '{campaign="$campaign"}'
    return [
        row("Dòng sáng kiến"),
        panel(
            "Sáng kiến tiếp nhận mỗi phút",
            [("sum by (via) (rate(sangkien_intake_initiatives_accepted_total[5m])) * 60", "{{via}}")],
            description="Intake: initiatives accepted per minute, single or batch.",
        ),
        panel(
            "Nộp mỗi phút theo tỉnh",
            [("sum by (province) (rate(sangkien_tally_initiatives_submitted_total[5m])) * 60", "{{province}}")],
        ),
        panel(
            "Quyết định mỗi phút theo kết quả",
            [
                (
                    "sum by (province, outcome) (rate(sangkien_tally_initiatives_decided_total[5m])) * 60",
                    "{{province}} {{outcome}}",
                )
            ],
        ),
        panel(
            "Sự kiện phát hành và tiêu thụ mỗi giây",
            [
                (f"sum by (service) (rate({each('events_published_total')}[5m]))", "phát hành {{service}}"),
                (f"sum by (service) (rate({each('events_consumed_total')}[5m]))", "tiêu thụ {{service}}"),
            ],
            unit="ops",
            width=12,
        ),
        panel(
            "Lỗi xử lý sự kiện mỗi giây",
            [(f"sum by (service, type) (rate({each('events_failed_total')}[5m]))", "{{service}} {{type}}")],
            unit="ops",
            width=12,
        ),
        row("Hàng đợi và độ trễ tiêu thụ"),
        panel(
            "Thông điệp chờ trong hàng đợi",
            [(f"max by (service) ({each('queue_messages_ready')})", "{{service}}")],
            description="Messages ready in each service's queue, as the broker reports them.",
        ),
        panel(
            "Đang giữ chưa xác nhận (unacked)",
            [(f"sum by (service) ({each('consumer_unacked_events')})", "{{service}}")],
        ),
        panel(
            "Sự kiện cũ nhất chưa xử lý",
            [(f"max by (service) ({each('consumer_oldest_unhandled_age_seconds')})", "{{service}}")],
            unit="s",
        ),
        panel(
            "Outbox: hàng chờ và tuổi hàng cũ nhất",
            [
                (f"max by (service) ({each('outbox_oldest_age_seconds')})", "tuổi {{service}}"),
                (f"max by (service) ({each('outbox_rows')})", "số hàng {{service}}"),
            ],
            unit="s",
        ),
        panel(
            "Thư chết đang chờ",
            [(f"max by (service) ({each('dead_letter_messages')})", "{{service}}")],
            kind="stat",
        ),
        panel(
            "Người tiêu thụ của hàng đợi",
            [(f"max by (service) ({each('queue_consumers')})", "{{service}}")],
            kind="stat",
        ),
        row("HTTP và cơ sở dữ liệu"),
        panel(
            "Yêu cầu mỗi giây",
            [(f"sum by (service) (rate({each('http_requests_total', ALL)}[5m]))", "{{service}}")],
            unit="reqps",
        ),
        panel(
            "Lỗi 5xx theo dịch vụ",
            [
                (
                    f'sum by (service) (rate({each("http_requests_total", ALL)[:-1]}, status=~"5.."}}[5m]))'
                    f" / sum by (service) (rate({each('http_requests_total', ALL)}[5m]))",
                    "{{service}}",
                )
            ],
            unit="percentunit",
        ),
        panel(
            "Độ trễ p99",
            [
                (
                    "histogram_quantile(0.99, sum by (service, le) "
                    f"(rate({each('http_request_duration_seconds_bucket', ALL)}[5m])))",
                    "{{service}}",
                )
            ],
            unit="s",
        ),
        panel(
            "Độ trễ p99 theo route",
            [
                (
                    "topk(10, histogram_quantile(0.99, sum by (service, route, le) "
                    f"(rate({each('http_request_duration_seconds_bucket', ALL)}[5m]))))",
                    "{{service}} {{route}}",
                )
            ],
            unit="s",
            width=12,
        ),
        panel(
            "Kết nối cơ sở dữ liệu đang dùng / tối đa",
            [
                (
                    f"sum by (service) ({each('db_pool_connections_in_use')})"
                    f" / sum by (service) ({each('db_pool_connections_max')})",
                    "{{service}}",
                ),
                (f"sum by (service) (rate({each('db_pool_waits_total')}[5m]))", "chờ/giây {{service}}"),
            ],
            unit="percentunit",
            width=12,
        ),
        row("Tiến độ theo tỉnh so với chỉ tiêu"),
        panel(
            "% chỉ tiêu đạt được",
            [
                (
                    f"max by (province) (sangkien_tally_province_valid_initiatives{quota_filter}) * 100"
                    f" / max by (province) (sangkien_tally_province_quota_initiatives{quota_filter} > 0)",
                    "{{province}}",
                )
            ],
            unit="percent",
            kind="bargauge",
            width=12,
        ),
        panel(
            "Sáng kiến hợp lệ và chỉ tiêu",
            [
                (f"max by (province) (sangkien_tally_province_valid_initiatives{quota_filter})", "hợp lệ {{province}}"),
                (
                    f"max by (province) (sangkien_tally_province_quota_initiatives{quota_filter})",
                    "chỉ tiêu {{province}}",
                ),
                (
                    f"max by (province) (sangkien_tally_province_submitted_initiatives{quota_filter})",
                    "đã nộp {{province}}",
                ),
            ],
            kind="table",
            width=12,
        ),
    ]


def layout(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Place panels left to right, a new line at each row or when 24 columns are used."""
    x = y = 0
    line_h = 0
    for n, item in enumerate(items, 1):
        item["id"] = n
        pos = item["gridPos"]
        if item["type"] == "row" or x + pos["w"] > 24:
            y, x, line_h = y + line_h, 0, 0
        pos["x"], pos["y"] = x, y
        if item["type"] == "row":
            y += pos["h"]
        else:
            x += pos["w"]
            line_h = max(line_h, pos["h"])
    return items


def dashboard() -> dict[str, Any]:
    return {
        "uid": "sangkien-ops",
        "title": "Sáng kiến — vận hành",
        "tags": ["sangkien"],
        "timezone": "Asia/Ho_Chi_Minh",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "editable": True,
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Nguồn dữ liệu"},
                {
                    "name": "campaign",
                    "type": "query",
                    "label": "Chiến dịch",
                    "datasource": DATASOURCE,
                    "query": {"query": "label_values(sangkien_tally_province_quota_initiatives, campaign)"},
                    "definition": "label_values(sangkien_tally_province_quota_initiatives, campaign)",
                    "refresh": 2,
                },
            ]
        },
        "panels": layout(panels()),
    }


def render() -> str:
    return json.dumps(dashboard(), ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
