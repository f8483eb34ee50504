"""``sangkien ops``: what an operator asks a live deployment, through the gateway with an operator token.

- ``status``: per service, the queue (messages ready, consumers, events held, the oldest one's age),
  dead letters waiting, the outbox and the database pool, as each service last sampled them;
- ``outbox``: rows waiting and the oldest row's age, per service;
- ``dead-letters list|inspect|replay SERVICE``: the dead letters of a service, one in full, or all of
  them back to its queue;
- ``tally verify``: recompute tally's counters from its facts on the live deployment.

Tables by default, JSON with ``--json``. The token is ``--token`` or ``SANGKIEN_TOKEN``; without one,
a development token is minted from ``JWT_SECRET`` (which only a development deployment accepts).
Exit codes: 0 fine, 1 something to act on (dead letters, an outbox row over a minute old,
differences), 2 the call failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import httpx

SERVICES = ("intake", "review", "tally", "awards")
OUTBOX_STALE_S = 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=os.environ.get("SANGKIEN_URL", "http://127.0.0.1:8000"), help="the gateway")
    parser.add_argument("--token", default=os.environ.get("SANGKIEN_TOKEN"), help="an operator's bearer token")
    parser.add_argument("--json", action="store_true", help="JSON instead of tables")
    sub = parser.add_subparsers(dest="ops_command", required=True)
    status = sub.add_parser("status", help="queues, lag, dead letters, outbox and pool per service")
    status.add_argument("--service", choices=SERVICES, action="append")
    outbox = sub.add_parser("outbox", help="outbox rows and the oldest row's age per service")
    outbox.add_argument("--service", choices=SERVICES, action="append")
    letters = sub.add_parser("dead-letters", help="list, inspect or replay a service's dead letters")
    letters.add_argument("action", choices=("list", "inspect", "replay"))
    letters.add_argument("service", choices=SERVICES)
    letters.add_argument("which", nargs="?", help="inspect: the index shown by list, or the event id")
    tally = sub.add_parser("tally", help="tally maintenance on the live deployment")
    tally.add_argument("action", choices=("verify",))
    tally.add_argument("--limit", type=int, default=100, help="differences to show")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(call(args))


class CallFailed(Exception):
    pass


async def call(args: argparse.Namespace, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """Run one ``sangkien ops`` command; ``transport`` lets tests reach an in-process gateway."""
    headers = {"Authorization": f"Bearer {args.token or _dev_token()}"}
    async with httpx.AsyncClient(base_url=args.url, headers=headers, timeout=120, transport=transport) as client:
        try:
            if args.ops_command in ("status", "outbox"):
                return await _status(client, args)
            if args.ops_command == "dead-letters":
                return await _dead_letters(client, args)
            return await _tally_verify(client, args)
        except CallFailed as exc:
            print(f"sangkien ops: {exc}", file=sys.stderr)
            return 2


def _dev_token() -> str:
    from sangkien_cli import dev_token

    return dev_token(["operator"], "VN", sub="sangkien-ops", name="sangkien ops")


async def _get(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    try:
        resp = await client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise CallFailed(f"{method} {path}: {exc!r}") from exc
    if resp.status_code != 200:
        raise CallFailed(f"{method} {path}: {resp.status_code} {resp.text[:300]}")
    return resp.json()


async def _status(client: httpx.AsyncClient, args: argparse.Namespace) -> int:
    services = args.service or list(SERVICES)

    async def one(service: str) -> dict[str, Any]:
        try:
            return await _get(client, "GET", f"/api/v1/ops/{service}/status")  # type: ignore[no-any-return]
        except CallFailed as exc:
            return {"service": service, "error": str(exc)}

    found = await asyncio.gather(*(one(s) for s in services))
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
    elif args.ops_command == "outbox":
        print(table(["service", "outbox rows", "oldest (s)"], [_outbox_row(s) for s in found]))
    else:
        print(table(STATUS_COLUMNS, [_status_row(s) for s in found]))
    if any("error" in s for s in found):
        return 2
    if args.ops_command == "outbox":  # the alert's threshold: a row waiting over a minute
        return 1 if any(s["outbox"]["oldest_age_s"] > OUTBOX_STALE_S for s in found) else 0
    return 1 if any(s["dead_letters"] for s in found) else 0


STATUS_COLUMNS = [
    *("service", "ready", "consumers", "held", "lag (s)"),
    *("dead letters", "outbox", "outbox age (s)", "pool"),
]


def _status_row(s: dict[str, Any]) -> list[Any]:
    if "error" in s:
        return [s["service"], s["error"]]
    q, pool = s["queue"], s["db_pool"]
    draining = " draining" if s.get("draining") else ""
    return [
        s["service"] + draining,
        q["ready"],
        q["consumers"],
        q["unacked_here"],
        q["oldest_unhandled_age_s"],
        s["dead_letters"],
        s["outbox"]["rows"],
        s["outbox"]["oldest_age_s"],
        f"{pool['in_use']}/{pool['max']} ({pool['waits']} waits)",
    ]


def _outbox_row(s: dict[str, Any]) -> list[Any]:
    if "error" in s:
        return [s["service"], s["error"]]
    return [s["service"], s["outbox"]["rows"], s["outbox"]["oldest_age_s"]]


def _letter(index: int, item: dict[str, Any]) -> dict[str, Any]:
    """A dead letter with its body decoded where it is an envelope."""
    try:
        body: Any = json.loads(item["body"])
    except ValueError:
        body = item["body"]
    envelope = body if isinstance(body, dict) else {}
    return {
        "index": index,
        "routing_key": item["routing_key"],
        "reason": item["reason"],
        "event_id": envelope.get("id"),
        "type": envelope.get("type"),
        "occurred_at": envelope.get("occurred_at"),
        "correlation_id": envelope.get("correlation_id"),
        "body": body,
    }


async def _dead_letters(client: httpx.AsyncClient, args: argparse.Namespace) -> int:
    base = f"/api/v1/ops/{args.service}/dead-letters"
    if args.action == "replay":
        replayed = (await _get(client, "POST", f"{base}/replay"))["replayed"]
        print(json.dumps({"service": args.service, "replayed": replayed}) if args.json else f"replayed {replayed}")
        return 0
    letters = [_letter(n, item) for n, item in enumerate((await _get(client, "GET", base))["items"])]
    if args.action == "list":
        if args.json:
            print(json.dumps(letters, ensure_ascii=False, indent=2))
        else:
            columns = ["index", "routing_key", "reason", "event_id", "occurred_at", "correlation_id"]
            print(table(columns, [[d[c] for c in columns] for d in letters]))
        return 1 if letters else 0
    if args.which is None:
        raise CallFailed("inspect needs the index shown by `list`, or the event id")
    chosen = [d for d in letters if str(d["index"]) == args.which or d["event_id"] == args.which]
    if not chosen:
        raise CallFailed(f"no dead letter {args.which!r} in {args.service}")
    print(json.dumps(chosen[0], ensure_ascii=False, indent=2))
    return 0


async def _tally_verify(client: httpx.AsyncClient, args: argparse.Namespace) -> int:
    found = await _get(client, "GET", "/api/v1/ops/tally/verify", params={"limit": args.limit})
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
    else:
        rows = [
            [d["table"], " / ".join(map(str, d["key"])), json.dumps(d["expected"]), json.dumps(d["actual"])]
            for d in found["differences"]
        ]
        if rows:
            print(table(["table", "key", "expected", "actual"], rows))
        print(f"{found['count']} difference(s)")
    return 1 if found["count"] else 0


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, columns as wide as their widest cell."""
    cells = [[str(c) for c in columns], *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
