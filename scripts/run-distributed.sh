#!/usr/bin/env bash
# Distributed mode on one machine: one process per service, each with its own PostgreSQL database,
# all on RabbitMQ and Redis. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PGURL=${PGURL:-postgresql://postgres@127.0.0.1:5432}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export ENVIRONMENT=${ENVIRONMENT:-development}
export INTAKE_URL=http://127.0.0.1:8001 REVIEW_URL=http://127.0.0.1:8002
export TALLY_URL=http://127.0.0.1:8003 AWARDS_URL=http://127.0.0.1:8004

bash scripts/ensure-services.sh
for svc in intake review tally awards; do
  "$BIN/python" - "$PGURL" "sangkien_$svc" <<'PY'
import asyncio, sys
import asyncpg
async def main(url: str, db: str) -> None:
    conn = await asyncpg.connect(url + "/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", db):
            await conn.execute(f'CREATE DATABASE "{db}"')
    finally:
        await conn.close()
asyncio.run(main(sys.argv[1], sys.argv[2]))
PY
done

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
for svc in tally intake review awards; do
  DATABASE_URL="${PGURL/postgresql:/postgresql+asyncpg:}/sangkien_$svc" "$BIN/sangkien" serve "$svc" &
  pids+=($!)
done
"$BIN/sangkien" serve gateway &
pids+=($!)
echo "gateway on http://127.0.0.1:8000/ ; load the demo with: $BIN/sangkien seed"
wait
