#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: initdb in a temporary directory, pg_ctl on a free loopback port.
# Source this file, then `pg_start` (exports ET_TEST_POSTGRES) and `pg_stop`.

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return 0; }; done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

free_port() { # free_port [FIRST]: the first port from FIRST (55432) up to 55532 that nothing answers on
  local p
  for p in $(seq "${1:-55432}" 55532); do
    (echo >"/dev/tcp/127.0.0.1/$p") >/dev/null 2>&1 || { echo "$p"; return 0; }
  done
  return 1
}

# initdb refuses to run as root: run the cluster as the postgres user then.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
  local bin; bin=$(pg_bin) || { echo "PostgreSQL is not installed" >&2; return 1; }
  PG_DIR=$(mktemp -d /tmp/et-pg.XXXXXX)
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DIR"
  # Set before anything can fail, so that pg_stop can always clean up.
  PG_BIN=$bin
  as_pg "$bin/initdb" -D "$PG_DIR/data" -A trust -U et --no-sync >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  # A port that nothing answered on can still be taken by the time the server binds it (another process, a socket
  # not yet released): then the next free one, up to three times.
  local attempt
  PG_PORT=55431
  for attempt in 1 2 3; do
    PG_PORT=$(free_port $((PG_PORT + 1))) || { echo "no free port for PostgreSQL in 55432-55532" >&2; return 1; }
    if as_pg "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
      -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null; then
      break
    fi
    if [ "$attempt" = 3 ] || ! grep -q "could not create any TCP/IP sockets" "$PG_DIR/server.log"; then
      cat "$PG_DIR/server.log" >&2
      return 1
    fi
    echo "PostgreSQL could not bind 127.0.0.1:$PG_PORT; trying another port" >&2
  done
  export ET_TEST_POSTGRES="Host=127.0.0.1;Port=$PG_PORT;Username=et;Database=postgres;Pooling=true;Maximum Pool Size=20"
  echo "PostgreSQL test cluster on 127.0.0.1:$PG_PORT ($PG_DIR)"
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=
}
