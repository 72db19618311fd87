#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite, on 127.0.0.1 and a free port.
#   eval "$(bash .ci/postgres.sh)"      start (or reuse) it; prints `export TINYFORGE_TEST_PG_URL=...`
#   bash .ci/postgres.sh stop           stop it and delete its files
# Installs Debian's postgresql when initdb/pg_ctl are missing. Idempotent: a running cluster in
# $TINYFORGE_PG_DIR is reused (about 50 ms). Everything but the export lines goes to stderr.
# The cluster runs as the `postgres` user when this runs as root (initdb refuses root).
set -euo pipefail

DIR="${TINYFORGE_PG_DIR:-/tmp/tinyforge-pg}"
DB=tinyforge_test
ROLE=tinyforge
log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
  local d
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v pg_ctl)")"
    return 0
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  done
  return 1
}

BIN="$(find_bindir || true)"
if [ -z "$BIN" ]; then
  log "installing postgresql (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  BIN="$(find_bindir)"
fi

# Debian's package creates the `postgres` user; binaries from elsewhere may not have.
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then useradd --system --no-create-home postgres; fi

# Run a command as the cluster's owner.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "${1:-}" = stop ]; then
  if [ -f "$DIR/data/postmaster.pid" ]; then as_owner "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2 || true; fi
  rm -rf "$DIR"
  log "stopped"
  exit 0
fi

print_env() {
  echo "export TINYFORGE_TEST_PG_URL='$(cat "$DIR/url")'"
  echo "export TINYFORGE_TEST_PG_STARTED=$1"
}

if [ -f "$DIR/url" ] && as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
  print_env 0
  exit 0
fi

# A stale or half-made cluster: start over.
if [ -d "$DIR" ]; then
  [ -f "$DIR/data/postmaster.pid" ] && as_owner "$BIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$DIR"
fi
mkdir -p "$DIR"
chmod 700 "$DIR"
[ "$(id -u)" = 0 ] && chown postgres: "$DIR"

PORT="$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
PASSWORD="$(node -e "console.log(require('crypto').randomBytes(12).toString('hex'))")"

# Local socket connections (the setup below) trust the OS user; TCP needs the password.
as_owner "$BIN/initdb" -D "$DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >/dev/null
as_owner "$BIN/pg_ctl" -D "$DIR/data" -w -l "$DIR/log" \
  -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null
as_owner "$BIN/psql" -h "$DIR" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -q >/dev/null <<SQL
CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD';
CREATE DATABASE $DB OWNER $ROLE;
SQL
umask 077
echo "postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB" > "$DIR/url"
[ "$(id -u)" = 0 ] && chown postgres: "$DIR/url"
log "started PostgreSQL $("$BIN/pg_ctl" --version | awk '{print $3}') on 127.0.0.1:$PORT ($DIR)"
print_env 1
