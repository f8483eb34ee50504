"""``sangkien serve``: uvicorn's plain-text access log only when ``ACCESS_LOG`` asks for it."""

from __future__ import annotations

from typing import Any

import pytest

import sangkien_cli
from sangkien_cli import access_log_wanted


@pytest.mark.parametrize(
    ("value", "wanted"),
    [(None, False), ("", False), ("0", False), ("false", False), ("no", False), ("1", True), (" TRUE ", True),
     ("yes", True), ("on", True)],
)  # fmt: skip
def test_access_log_is_off_unless_asked_for(value: str | None, wanted: bool) -> None:
    assert access_log_wanted({} if value is None else {"ACCESS_LOG": value}) is wanted


def test_serve_hands_the_choice_to_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: seen.append({"app": app, **kwargs}))
    monkeypatch.delenv("ACCESS_LOG", raising=False)
    sangkien_cli.serve("tally", "127.0.0.1", 0)
    monkeypatch.setenv("ACCESS_LOG", "1")
    sangkien_cli.serve("gateway", "127.0.0.1", 9999)
    assert [(s["app"], s["access_log"], s["port"]) for s in seen] == [
        ("tally.app:create", False, sangkien_cli.PORTS["tally"]),
        ("gateway.app:create", True, 9999),
    ]
