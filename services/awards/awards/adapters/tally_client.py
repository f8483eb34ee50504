"""Reading a tally snapshot over tally's internal HTTP contract (docs/events.md), caller's token forwarded."""

from __future__ import annotations

from typing import Any

import httpx

from awards.domain.errors import SnapshotForbidden, SnapshotNotFound, TallyUnavailable


class TallyClient:
    def __init__(
        self, base_url: str, *, transport: httpx.AsyncBaseTransport | None = None, timeout_s: float, page_size: int
    ) -> None:
        self.base_url = base_url
        self.transport = transport
        self.timeout_s = timeout_s
        self.page_size = page_size

    def _client(self, authorization: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": authorization} if authorization else {}
        # service to service: reached directly, never through a proxy of the environment
        return httpx.AsyncClient(
            base_url=self.base_url, transport=self.transport, timeout=self.timeout_s, headers=headers, trust_env=False
        )

    @staticmethod
    def _check(resp: httpx.Response) -> Any:
        if resp.status_code == 200:
            return resp.json()
        if resp.status_code == 404:
            raise SnapshotNotFound()
        if resp.status_code in (401, 403):
            raise SnapshotForbidden()
        raise TallyUnavailable("Dịch vụ tổng hợp số liệu trả lời lỗi")

    async def snapshot(self, snapshot_id: str, authorization: str | None) -> dict[str, Any]:
        try:
            async with self._client(authorization) as client:
                return dict(self._check(await client.get(f"/api/v1/tally/snapshots/{snapshot_id}")))
        except httpx.HTTPError as exc:
            raise TallyUnavailable() from exc

    async def figures(self, snapshot_id: str, kind: str, authorization: str | None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        try:
            async with self._client(authorization) as client:
                while True:
                    params: dict[str, Any] = {"kind": kind, "limit": self.page_size}
                    if cursor:
                        params["cursor"] = cursor
                    body = self._check(
                        await client.get(f"/api/v1/tally/snapshots/{snapshot_id}/figures", params=params)
                    )
                    items.extend(body.get("items") or [])
                    cursor = body.get("next_cursor")
                    if not cursor:
                        return items
        except httpx.HTTPError as exc:
            raise TallyUnavailable() from exc
