"""Typed settings of the awards service."""

from __future__ import annotations

from shared.settings import ServiceSettings


class AwardsSettings(ServiceSettings):
    database_url: str = "sqlite+aiosqlite:///./var/awards.db"
    # Where tally answers in distributed mode (the embedded runner passes an ASGI transport instead).
    tally_url: str = "http://127.0.0.1:8003"
    tally_timeout_s: float = 30.0
    # Page size used when reading a snapshot's figures from tally.
    tally_page_size: int = 1000
