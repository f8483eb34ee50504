"""docs/CONVENTIONS.md walks the code file by file: every file or folder it names must be in the project."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("intake", "review", "tally", "awards", "gateway")


def named_paths(text: str) -> set[str]:
    """The paths in backticks (``a/b.py``, ``a/b/``), without a call, a placeholder or a wildcard."""
    found = set()
    for token in re.findall(r"`([^`\s]+)`", text):
        token = token.split(",")[0]
        if "/" not in token or any(c in token for c in "<>*(){}…") or token.startswith(("http", "/")):
            continue
        if token.endswith((".py", ".md", ".sh", ".toml", ".yml", ".yaml", "/")):
            found.add(token)
    return found


def exists(path: str) -> bool:
    """At the root, under services/, or in its service's folder (``intake/app.py`` is services/intake/intake/app.py)."""
    first = path.split("/", 1)[0]
    places = [ROOT / path, ROOT / "services" / path]
    if first in SERVICES:
        places.append(ROOT / "services" / first / path)
    return any(p.exists() for p in places)


def test_every_file_the_conventions_name_is_in_the_project() -> None:
    text = (ROOT / "docs" / "CONVENTIONS.md").read_text(encoding="utf-8")
    paths = named_paths(text)
    assert len(paths) >= 30, sorted(paths)  # the walk names the files it passes through
    assert sorted(p for p in paths if not exists(p)) == []


def test_the_walk_goes_from_the_body_to_a_counter() -> None:
    text = (ROOT / "docs" / "CONVENTIONS.md").read_text(encoding="utf-8")
    walk = text.split("## One initiative, from the HTTP body to a counter", 1)[1].split("\n## ", 1)[0]
    order = [
        "gateway/api/front.py",
        "intake/api/routes/initiatives.py",
        "intake/service/submissions.py",
        "intake/adapters/store.py",
        "OutboxRelay",
        "review/handlers/initiatives.py",
        "review/service.py",
        "tally/handlers/initiatives.py",
        "tally/adapters/counters.py",
    ]
    positions = [walk.index(step) for step in order]
    assert positions == sorted(positions)
