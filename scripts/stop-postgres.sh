#!/usr/bin/env bash
# Stop the PostgreSQL cluster that scripts/start-postgres.sh recorded in FILE as started by it.
#
# Usage: scripts/stop-postgres.sh FILE
#
# FILE is the one named by MODELSEAL_PG_STARTED_FILE when start-postgres.sh ran: two lines, the
# server's bin directory and its data directory. An empty or missing FILE means that run found a
# server already answering (someone else's): nothing is stopped. Fast shutdown, bounded wait.
set -euo pipefail

FILE="${1:?usage: scripts/stop-postgres.sh FILE}"
[ -s "$FILE" ] || exit 0
{ read -r bindir; read -r data; } <"$FILE"
[ -x "$bindir/pg_ctl" ] && [ -f "$data/postmaster.pid" ] || exit 0

if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$bindir/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null
else
    "$bindir/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null
fi
: >"$FILE"
