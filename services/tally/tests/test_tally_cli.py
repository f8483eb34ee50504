"""``python -m tally.cli verify|rebuild`` on a database whose counters disagree with its facts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tally.cli import main


def test_verify_exits_nonzero_on_a_difference_and_rebuild_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "tally.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    assert main(["verify"]) == 0  # migrates an empty database: nothing to differ
    with sqlite3.connect(db) as conn:  # a counter no fact supports
        conn.execute(
            "INSERT INTO counters (unit_code, campaign, phase, submitted, valid, invalid, benefit_vnd, participants) "
            "VALUES ('TH', '1M', '*', 5, 0, 0, 0, 0)"
        )
    assert main(["verify"]) == 1
    assert '"table": "counters"' in capsys.readouterr().out
    assert main(["rebuild"]) == 0
    assert main(["verify"]) == 0
