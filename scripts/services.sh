#!/usr/bin/env bash
# Makes sure the servers the integration tests talk to are up on this machine:
# PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379. Starts the local
# installation when it is installed but not running; does nothing otherwise
# (the test suite then starts a throwaway PostgreSQL cluster of its own, and
# fails — never skips — under CI if Redis is missing).
set -uo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

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
for _ in $(seq 1 50); do
    { answers 5432 || ! command -v pg_ctlcluster >/dev/null 2>&1; } \
        && { answers 6379 || ! command -v redis-server >/dev/null 2>&1; } && break
    sleep 0.2
done
exit 0
