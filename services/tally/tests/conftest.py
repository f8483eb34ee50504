"""Makes the shared test kit importable (importlib mode) and exposes its fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tally_testkit import app_client, app_client_pg, broker, planned, planned_pg  # noqa: E402

__all__ = ["app_client", "app_client_pg", "broker", "planned", "planned_pg"]
