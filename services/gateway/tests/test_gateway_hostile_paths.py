"""Paths schemathesis found to crash the gateway (issue 14, item 4): answered in the 4xx range, never 500."""

from __future__ import annotations

import pytest

from shared.testing import auth

PATHS = [
    "/api/v1/initiatives/W%F3%8F%8E%8D%C3%89%C2%BA%0B%C3%99C",  # a vertical tab, not a UUID: proxied to intake
    "/api/v1/units/HN%3Fx%3D1/overview",  # a "?" inside the code must stay inside it
    "/api/v1/units/%0A/overview",
    "/api/v1/review/items/%00",
]


@pytest.mark.parametrize("path", PATHS)
async def test_a_hostile_path_is_not_a_server_error(gateway, path: str) -> None:
    async with gateway() as h:
        r = await h.client.get(path, headers=auth("operator", "VN"))
        assert r.status_code < 500, r.text
        for _service, _method, seen_path, _headers, _body in h.calls():
            assert "?" not in seen_path  # nothing was smuggled into a downstream query
