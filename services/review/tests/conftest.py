"""Makes review's test kit importable (importlib mode) and exposes its fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from review_testkit import broker, pg_review, review  # noqa: E402

__all__ = ["broker", "pg_review", "review"]
