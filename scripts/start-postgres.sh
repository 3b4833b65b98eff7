#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on 127.0.0.1 for the registry tests and print its URL.
#
# Usage: scripts/start-postgres.sh [PORT]        (default port 55432)
#        export MODELSEAL_TEST_POSTGRES_URL="$(scripts/start-postgres.sh)"
# Stop:  MODELSEAL_PG_STARTED_FILE=FILE scripts/start-postgres.sh  records in FILE the cluster it
#        started (nothing when a server was already running); scripts/stop-postgres.sh FILE stops
#        exactly that one (`make test` does both, so it never stops a server it did not start).
#
# Runs as root (CI) or as an ordinary user. The cluster lives under ${TMPDIR:-/tmp}; fsync is off:
# it is for tests only. Idempotent: when a server already answers on PORT, only the URL is printed.
set -euo pipefail

PORT="${1:-55432}"
BASE="${MODELSEAL_PG_BASE:-${TMPDIR:-/tmp}/modelseal-pg-$PORT}"
DATA="$BASE/data"
SOCK="$BASE/sock"
URL="postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"

bindir=""
for candidate in /usr/lib/postgresql/*/bin; do
    [ -x "$candidate/pg_ctl" ] && bindir="$candidate"
done
if [ -z "$bindir" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q postgresql >/dev/null 2>&1 \
            || { apt-get update -q >/dev/null && apt-get install -y -q postgresql >/dev/null; }
        for candidate in /usr/lib/postgresql/*/bin; do
            [ -x "$candidate/pg_ctl" ] && bindir="$candidate"
        done
    fi
fi
[ -n "$bindir" ] || { echo "start-postgres: PostgreSQL server binaries not found" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

if as_pg "$bindir/pg_isready" -q -h 127.0.0.1 -p "$PORT" 2>/dev/null; then
    echo "$URL"
    exit 0
fi

mkdir -p "$DATA" "$SOCK"
if [ "$(id -u)" = 0 ]; then
    chown -R postgres:postgres "$BASE"
fi
chmod 700 "$DATA"
if [ ! -f "$DATA/PG_VERSION" ]; then
    as_pg "$bindir/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 >"$BASE/initdb.log" 2>&1 \
        || { cat "$BASE/initdb.log" >&2; exit 1; }
fi
as_pg "$bindir/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 30 \
    -o "-p $PORT -k $SOCK -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" \
    start >/dev/null \
    || { cat "$DATA/server.log" >&2; exit 1; }
if [ -n "${MODELSEAL_PG_STARTED_FILE:-}" ]; then
    printf '%s\n%s\n' "$bindir" "$DATA" >"$MODELSEAL_PG_STARTED_FILE"
fi
echo "$URL"
