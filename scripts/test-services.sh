# Sourced by scripts/test.sh: a Redis and a PostgreSQL of the test run's own, on free loopback
# ports, in a temporary folder, stopped and removed when the run ends (also when it fails).
# The suite never depends on a machine's services being there: a fresh Debian has none, and a
# machine that has them keeps its data out of the tests' way. NONSTOP_TEST_REDIS_PORT (with
# NONSTOP_TEST_REDIS_HOST) and NONSTOP_TEST_PG_URL point the tests at servers of your own instead.

services_dir=$(mktemp -d "${TMPDIR:-/tmp}/nonstop-test-services.XXXXXX")
chmod 755 "$services_dir"
services_pg_bin=""
services_pg_user=""

services_stop() {
  if [ -f "$services_dir/redis.pid" ]; then
    kill "$(cat "$services_dir/redis.pid")" 2>/dev/null || true
  fi
  if [ -n "$services_pg_bin" ] && [ -f "$services_dir/pg/postmaster.pid" ]; then
    services_as_pg "$services_pg_bin/pg_ctl" -D "$services_dir/pg" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$services_dir"
}
trap services_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free TCP port on 127.0.0.1 (the kernel's pick, released right away).
services_free_port() {
  node -e "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); });"
}

# PostgreSQL refuses to run as root: as root its cluster belongs to the postgres account.
services_as_pg() {
  if [ -n "$services_pg_user" ]; then runuser -u "$services_pg_user" -- "$@"; else "$@"; fi
}

# The port answers before the timeout, or the run stops with the server's log.
services_wait_port() {
  port=$1 what=$2 log=$3
  for _ in $(seq 1 100); do
    if node -e "require('node:net').connect($port, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))"; then
      return 0
    fi
    sleep 0.1
  done
  echo "test services: $what did not start on port $port" >&2
  cat "$log" >&2 || true
  exit 1
}

if [ -z "${NONSTOP_TEST_REDIS_PORT:-}" ]; then
  port=$(services_free_port)
  # Nothing on disk: no RDB, no AOF, as the brokers' Redis.
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$services_dir" \
    --daemonize yes --pidfile "$services_dir/redis.pid" --logfile "$services_dir/redis.log"
  services_wait_port "$port" "redis-server" "$services_dir/redis.log"
  export NONSTOP_TEST_REDIS_HOST=127.0.0.1 NONSTOP_TEST_REDIS_PORT="$port"
  echo "test services: Redis on 127.0.0.1:$port"
fi

if [ -z "${NONSTOP_TEST_PG_URL:-}" ]; then
  services_pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$services_pg_bin" ] || [ ! -x "$services_pg_bin/initdb" ]; then
    echo "test services: PostgreSQL's server is not installed (Debian: postgresql; scripts/setup.sh installs it as root)" >&2
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then services_pg_user=postgres; fi
  mkdir "$services_dir/pg"
  # The cluster's folder and its log belong to whoever runs it (root can still write there).
  [ -z "$services_pg_user" ] || chown "$services_pg_user" "$services_dir" "$services_dir/pg"
  port=$(services_free_port)
  services_as_pg "$services_pg_bin/initdb" -D "$services_dir/pg" -U postgres -A trust -E UTF8 \
    --no-sync >"$services_dir/initdb.log" 2>&1 || {
    cat "$services_dir/initdb.log" >&2
    exit 1
  }
  # A throwaway cluster: durability off (fsync, full pages) makes the suite's many small
  # transactions fast; connections for the integration tests' pools run side by side.
  services_as_pg "$services_pg_bin/pg_ctl" -D "$services_dir/pg" -l "$services_dir/pg.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $services_dir/pg -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200" \
    start >/dev/null
  services_wait_port "$port" "PostgreSQL" "$services_dir/pg.log"
  services_as_pg "$services_pg_bin/createdb" -h 127.0.0.1 -p "$port" -U postgres test
  export NONSTOP_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/test"
  echo "test services: PostgreSQL on 127.0.0.1:$port"
fi
