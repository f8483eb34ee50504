"""schemathesis over the gateway's merged OpenAPI (issue 14, item 4), against the whole system over real HTTP.

The system runs as ``sangkien run`` does (one process, SQLite, the in-process bus), seeded like the
authorization matrix. Every operation of ``/api/v1/openapi.json`` gets generated requests, each signed as
one of the six roles (hypothesis picks it), in the Hà Nội subtree where the seeded targets live. A run
passes when nothing answers 5xx (a 503 would be an outage, and there is none here) and every response
matches what the OpenAPI documents: its status, its content type and its schema.

The budget is bounded: ``SANGKIEN_FUZZ_EXAMPLES`` examples per operation (default 12; CI may use fewer).
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.security.system import ROLES, UNLIMITED, headers, seed

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("SANGKIEN_FUZZ_EXAMPLES", "12"))
# The same examples on every run unless asked otherwise (SANGKIEN_FUZZ_RANDOM=1 explores new ones).
DERANDOMIZE = os.environ.get("SANGKIEN_FUZZ_RANDOM") != "1"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``sangkien run`` on a loopback port, seeded; yields its base URL."""
    var = tmp_path_factory.mktemp("fuzz")
    port = _free_port()
    env = {
        **os.environ,
        **{k.upper(): str(v) for k, v in UNLIMITED.items() if k.startswith("rate_")},
        "LOG_LEVEL": "WARNING",
    }
    log = (var / "server.log").open("wb")
    cmd = [sys.executable, "-m", "sangkien_cli", "run", "--no-seed", "--port", str(port), "--var", str(var)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the system did not start: " + (var / "server.log").read_text()[-2000:])
            time.sleep(0.2)

        async def seeded() -> None:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                await seed(client)

        asyncio.run(seeded())
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_no_5xx_and_every_answer_as_documented(system: str) -> None:
    """Each operation in turn; the failures of all are reported together."""
    schema = schemathesis.openapi.from_url(system + "/api/v1/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
        )

        @given(case=cases, role=st.sampled_from(ROLES))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=DERANDOMIZE,
        )
        def fuzz(case: Any, role: str) -> None:
            case.call_and_validate(base_url=system, headers=headers(role, "in_scope"), checks=CHECKS, timeout=30)

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # hypothesis re-raises what the (shrunk) example raised
            failures.append(f"{operation.label}: {type(exc).__name__}: {str(exc)[:1500]}")
    assert operations >= 50
    assert not failures, f"{len(failures)} of {operations} operations:\n\n" + "\n\n".join(failures)
