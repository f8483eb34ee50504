#!/usr/bin/env bash
# Make sure PostgreSQL, RabbitMQ and Redis answer on loopback; start any that is installed but stopped.
set -u
pg_up()     { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
rabbit_up() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }
redis_up()  { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

if ! pg_up && [ -d /etc/postgresql ]; then
  echo "starting PostgreSQL"; pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
if ! rabbit_up && command -v rabbitmq-server >/dev/null; then
  echo "starting RabbitMQ"; rabbitmq-server -detached || true
fi
if ! redis_up && command -v redis-server >/dev/null; then
  echo "starting Redis"; redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
fi
for i in $(seq 1 60); do
  if pg_up && rabbit_up && redis_up; then exit 0; fi
  sleep 1
done
pg_up || echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2
rabbit_up || echo "RabbitMQ is not reachable on 127.0.0.1:5672" >&2
redis_up || echo "Redis is not reachable on 127.0.0.1:6379" >&2
exit 1
