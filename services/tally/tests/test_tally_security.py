"""Issue 14 in tally: quotas are read in scope only (finding 10); unit imports refuse bombs and bad CSV
(findings 3, 7); a snapshot's figures never widen to a token without unit (finding 5)."""

from __future__ import annotations

import time

import httpx
from fastapi import FastAPI
from tally_testkit import OP

from shared.testing import auth, xlsx_bytes


async def test_quotas_are_read_by_operators_and_unit_admins_in_scope(
    planned: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _app, client = planned
    quota = [{"unit_code": "TH-01", "phase": "P1", "assigned": 100, "self_set": 120}]
    assert (await client.put("/api/v1/campaigns/1M/quotas", json=quota, headers=OP)).status_code == 200
    path = "/api/v1/campaigns/1M/quotas?unit=TH-01"
    for headers in (OP, auth("unit_admin", "TH"), auth("unit_admin", "TH-01")):
        r = await client.get(path, headers=headers)
        assert r.status_code == 200 and r.json()["items"][0]["self_set"] == 120, r.text
    refused = (
        auth("unit_admin", "HN"),
        auth("unit_admin", "th"),
        auth("unit_admin", None),
        auth("member", "TH"),
        auth("reviewer", "TH"),
        auth("support", "VN"),
    )
    for headers in refused:
        r = await client.get(path, headers=headers)
        assert r.status_code == 403 and "items" not in r.json(), r.text
    assert (await client.get(path)).status_code == 401


async def test_unit_imports_refuse_bombs_and_bad_csv_with_a_422(planned: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = planned
    cpu = time.process_time()  # this process's CPU: the service's own, not the worker's
    bomb = xlsx_bytes([["code", "name"], *([[]] * 19998), ["X-1"]], dimension="A1:XFD20000")
    files = {"file": ("units.xlsx", bomb, "application/octet-stream")}
    r = await client.post("/api/v1/units/import", files=files, headers=OP)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "file", r.text
    assert time.process_time() - cpu < 1.0  # the same sheet took 13 s of this process's CPU before
    huge_field = b"code,name,kind,parent_code\nX-1," + b"x" * 200_000 + b",grassroots,TH-01\n"
    for content in (huge_field, "mã;tên\n".encode("utf-16")):
        r = await client.post("/api/v1/units/import", files={"file": ("u.csv", content, "text/csv")}, headers=OP)
        assert r.status_code == 422, r.text


async def test_a_nul_in_a_name_is_a_422_not_a_database_error(app_client: tuple[FastAPI, httpx.AsyncClient]) -> None:
    _app, client = app_client
    unit = {"code": "VN", "name": "Việt\x00Nam", "kind": "national", "parent_code": None}
    r = await client.put("/api/v1/units", json=[unit], headers=OP)
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"].startswith("name"), r.text
