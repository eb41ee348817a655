#!/usr/bin/env bash
# Makes sure the servers the integration tests talk to are up on this machine:
# PostgreSQL on 127.0.0.1:5432, Redis on 127.0.0.1:6379 and RabbitMQ on
# 127.0.0.1:5672. Starts a local installation when it is installed but not
# running; does nothing otherwise (the test suite then starts a throwaway
# PostgreSQL cluster of its own, and fails — never skips — under CI if Redis
# or RabbitMQ is missing). Installs the PgBouncer binary (Debian package) when
# it is missing: the pooler tests start their own pgbouncer process with it.
set -uo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"; else return 1; fi; }

if ! answers 5432 && command -v pg_ctlcluster >/dev/null 2>&1; then
    for version in $(ls /etc/postgresql 2>/dev/null); do
        echo "services: starting PostgreSQL $version" >&2
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
fi
if ! answers 6379 && command -v redis-server >/dev/null 2>&1; then
    echo "services: starting Redis" >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir /tmp --logfile /tmp/keel-redis.log || true
fi
rabbitmq=""
if ! answers 5672 && command -v rabbitmq-server >/dev/null 2>&1; then
    echo "services: starting RabbitMQ" >&2
    as_root rabbitmq-server -detached || true
    rabbitmq=starting
fi
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ] \
    && command -v apt-get >/dev/null 2>&1; then
    echo "services: installing pgbouncer" >&2
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -q pgbouncer >/dev/null 2>&1 \
        || { as_root apt-get update -q >/dev/null 2>&1 \
            && as_root apt-get install -y -q pgbouncer >/dev/null 2>&1; } \
        || echo "services: could not install pgbouncer" >&2
fi
for _ in $(seq 1 50); do
    { answers 5432 || ! command -v pg_ctlcluster >/dev/null 2>&1; } \
        && { answers 6379 || ! command -v redis-server >/dev/null 2>&1; } && break
    sleep 0.2
done
if [ -n "$rabbitmq" ]; then
    # RabbitMQ boots an Erlang node: seconds, not a fraction of one.
    for _ in $(seq 1 150); do answers 5672 && break; sleep 0.2; done
fi
exit 0
