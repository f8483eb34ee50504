"""``python -m tally.cli verify|rebuild``: check or restore the counters against the facts (settings from env)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from shared.db import make_engine, run_migrations
from tally.adapters import maintenance
from tally.adapters.orm import metadata
from tally.app import MIGRATIONS
from tally.settings import TallySettings


async def _run(action: str, settings: TallySettings, limit: int) -> int:
    engine = await make_engine(settings.database_url)
    try:
        await run_migrations(engine, MIGRATIONS, metadata)
        if action == "verify":
            diffs = await maintenance.verify(engine)
            for d in diffs[:limit]:
                print(json.dumps(d, ensure_ascii=False, default=str))
            print(f"{len(diffs)} difference(s)", file=sys.stderr)
            return 1 if diffs else 0
        fixed = await maintenance.rebuild(engine)
        print(f"rebuilt counters; {fixed} difference(s) corrected", file=sys.stderr)
        return 0
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tally.cli", description="Tally counters maintenance")
    parser.add_argument("action", choices=("verify", "rebuild"))
    parser.add_argument("--limit", type=int, default=100, help="differences to print (verify)")
    args = parser.parse_args(argv)
    return asyncio.run(_run(args.action, TallySettings(), args.limit))


if __name__ == "__main__":
    raise SystemExit(main())
