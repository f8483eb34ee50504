"""Issue 17 (6): ``sangkien ops`` through the gateway with an operator token, on the embedded system:
status and outbox tables, dead letters listed, inspected and replayed, tally verified; JSON with --json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx
import pytest

import sangkien_ops
from shared.bus.base import OutgoingMessage
from shared.testing import token
from tests.flow import embedded_system, walking_skeleton


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sangkien_ops.add_arguments(parser)
    return parser.parse_args(["--url", "http://gw", "--token", token("operator", "VN"), *argv])


async def test_status_dead_letters_and_tally_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with embedded_system(tmp_path, ops_sample_interval_s=0.1) as (client, apps):
        await walking_skeleton(client)
        transport = httpx.ASGITransport(app=apps["gateway"], client=("127.0.0.1", 5000))

        async def ops(*argv: str) -> tuple[int, str]:
            code = await sangkien_ops.call(parse(*argv), transport)
            return code, capsys.readouterr().out

        code, out = await ops("status")
        assert code == 0, out
        lines = out.splitlines()
        assert lines[0].split()[:3] == ["service", "ready", "consumers"]
        assert {line.split()[0] for line in lines[2:]} == {"intake", "review", "tally", "awards"}

        # A message nobody can read ends as tally's dead letter.
        tally = apps["tally"]
        await tally.state.ctx.bus.publish_raw([OutgoingMessage("x", "initiative.submitted.v1", b"{broken")])
        await tally.state.signals.sample_once()
        code, out = await ops("--json", "status", "--service", "tally")
        assert code == 1  # something to act on
        (status,) = json.loads(out)
        assert status["dead_letters"] == 1 and status["queue"]["consumers"] == 1

        code, out = await ops("dead-letters", "list", "tally")
        assert code == 1 and "initiative.submitted.v1" in out and "undecodable" in out
        code, out = await ops("dead-letters", "inspect", "tally", "0")
        assert code == 0 and json.loads(out)["body"] == "{broken"
        code, out = await ops("dead-letters", "inspect", "tally", "7")
        assert code == 2
        code, out = await ops("--json", "dead-letters", "replay", "tally")
        assert code == 0 and json.loads(out) == {"service": "tally", "replayed": 1}

        code, out = await ops("outbox")
        assert code == 0 and out.splitlines()[0].split()[:3] == ["service", "outbox", "rows"]

        code, out = await ops("tally", "verify")
        assert code == 0 and out.strip().endswith("0 difference(s)")
        code, out = await ops("--json", "tally", "verify")
        assert json.loads(out) == {"count": 0, "differences": []}


async def test_a_token_without_the_operator_role_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with embedded_system(tmp_path) as (_client, apps):
        transport = httpx.ASGITransport(app=apps["gateway"], client=("127.0.0.1", 5000))
        args = parse("tally", "verify")
        args.token = token("reviewer", "VN")
        assert await sangkien_ops.call(args, transport) == 2
        assert "403" in capsys.readouterr().err


def test_table_aligns_columns() -> None:
    assert sangkien_ops.table(["a", "bb"], [[1, None], ["long", 2]]).splitlines() == [
        "a     bb",
        "----  --",
        "1",
        "long  2",
    ]
