#!/usr/bin/env bash
# Distributed mode on one machine: one process per service, each with its own PostgreSQL database,
# all on RabbitMQ and Redis. Ctrl-C stops them all.
# Optional overrides (defaults in brackets), used e.g. by bench/pipeline.py to run beside another copy:
#   DB_PREFIX [sangkien_]  the databases are ${DB_PREFIX}<service>
#   AMQP_PREFIX []         prefix of the exchanges and queues
#   GATEWAY_PORT [8000], INTAKE_PORT [8001], REVIEW_PORT [8002], TALLY_PORT [8003], AWARDS_PORT [8004]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PGURL=${PGURL:-postgresql://postgres@127.0.0.1:5432}
DB_PREFIX=${DB_PREFIX:-sangkien_}
GATEWAY_PORT=${GATEWAY_PORT:-8000} INTAKE_PORT=${INTAKE_PORT:-8001} REVIEW_PORT=${REVIEW_PORT:-8002}
TALLY_PORT=${TALLY_PORT:-8003} AWARDS_PORT=${AWARDS_PORT:-8004}
export AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
export AMQP_PREFIX=${AMQP_PREFIX:-}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
export ENVIRONMENT=${ENVIRONMENT:-development}
export INTAKE_URL=http://127.0.0.1:$INTAKE_PORT REVIEW_URL=http://127.0.0.1:$REVIEW_PORT
export TALLY_URL=http://127.0.0.1:$TALLY_PORT AWARDS_URL=http://127.0.0.1:$AWARDS_PORT
declare -A PORT=([gateway]=$GATEWAY_PORT [intake]=$INTAKE_PORT [review]=$REVIEW_PORT [tally]=$TALLY_PORT
                 [awards]=$AWARDS_PORT)

bash scripts/ensure-services.sh
for svc in intake review tally awards; do
  "$BIN/python" - "$PGURL" "$DB_PREFIX$svc" <<'PY'
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
  DATABASE_URL="${PGURL/postgresql:/postgresql+asyncpg:}/$DB_PREFIX$svc" "$BIN/sangkien" serve "$svc" --port "${PORT[$svc]}" &
  pids+=($!)
done
"$BIN/sangkien" serve gateway --port "$GATEWAY_PORT" &
pids+=($!)
echo "gateway on http://127.0.0.1:$GATEWAY_PORT/ ; load the demo with: $BIN/sangkien seed --url http://127.0.0.1:$GATEWAY_PORT"
wait
