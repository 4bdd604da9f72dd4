#!/bin/sh
# The whole test suite: type check (the build), lint, format, unit, integration and (as root)
# end-to-end tests. `npm test` runs scripts/setup.sh first.
set -eu
cd "$(dirname "$0")/.."

lint_and_format() {
  echo "== lint"
  npx eslint --max-warnings=0 .
  echo "== format"
  npx prettier --check --log-level=warn .
}

# A Redis and a PostgreSQL of the run's own (unless NONSTOP_TEST_* point elsewhere).
. scripts/test-services.sh

# `npm test -- unit integration/request-path` runs only what it names (a folder of dist/test, or
# a test file there without `.test.js`), after the same lint and format.
if [ $# -gt 0 ]; then
  selected=""
  for name in "$@"; do
    if [ -d "dist/test/$name" ]; then
      selected="$selected dist/test/$name"
    elif [ -f "dist/test/$name.test.js" ]; then
      selected="$selected dist/test/$name.test.js"
    else
      echo "test: no suite and no test file named '$name' (dist/test/$name, dist/test/$name.test.js)" >&2
      exit 2
    fi
  done
  lint_and_format
  echo "== tests:$selected"
  node --test --test-reporter=spec --test-concurrency=1 --test-timeout=900000 $selected
  exit
fi

# The e2e files fall in three groups (root only):
# - provisioning (test/e2e/ansible-*: Debian hosts booted with systemd-nspawn and converged by
#   ansible-playbook; fresh-machine: the README's commands in a fresh Debian container): a lane
#   of their own, started first and run beside the unit, integration and shared e2e tests. They
#   are a third of the suite's time, share nothing with the other tests (their hosts, machine
#   names and folders carry their process id; no other test boots a container) and assert on no
#   duration. Their output comes after the shared group's;
# - quiet: the files that load the machine to measure it or that hold requests to a deadline
#   under attack, a flood or faults (QUIET below). They run last, one at a time, once the
#   provisioning lane has ended: beside it they starve (attack-gateway's gw2 got timeouts);
# - shared: every other file, one at a time, beside the provisioning lane.
# Either lane failing fails the run.
QUIET="attack-gateway bench-smoke chaos clock-skew guard-flood guard-knock guard-spa http2 netem redis-budget soak-smoke tunnels"
lane_pid=""
lane_log="$services_dir/e2e-provisioning.log"
lane_stop() {
  if [ -n "$lane_pid" ]; then kill -INT "$lane_pid" 2>/dev/null || true; wait "$lane_pid" 2>/dev/null || true; fi
  services_stop
}
trap lane_stop EXIT
provisioning=""
shared=""
quiet=""
if [ -d dist/test/e2e ] && [ "$(id -u)" -eq 0 ]; then
  for name in $QUIET; do
    [ -f "dist/test/e2e/$name.test.js" ] || {
      echo "test: QUIET names '$name', which is no file of dist/test/e2e" >&2
      exit 2
    }
  done
  for f in dist/test/e2e/*.test.js; do
    name=$(basename "$f" .test.js)
    case "$name" in
      ansible-* | fresh-machine) provisioning="$provisioning $f" ;;
      *)
        case " $QUIET " in
          *" $name "*) quiet="$quiet $f" ;;
          *) shared="$shared $f" ;;
        esac
        ;;
    esac
  done
  if [ -n "$provisioning" ]; then
    echo "== e2e, provisioning lane (beside the tests below; its output comes after them):$provisioning"
    node --test --test-reporter=spec --test-concurrency=1 --test-timeout=900000 $provisioning \
      >"$lane_log" 2>&1 &
    lane_pid=$!
  fi
fi

# Lint and format beside the lane's start; a finding stops the run (the lane with it).
lint_and_format

status=0
suites=""
for dir in dist/test/unit dist/test/integration; do
  if [ -d "$dir" ]; then suites="$suites $dir"; fi
done
if [ -n "$suites" ]; then
  echo "== tests:$suites"
  node --test --test-reporter=spec --test-timeout=120000 $suites || status=1
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "== e2e: skipped, it needs root (network namespaces, nftables, sshd)"
  exit "$status"
fi

# One file at a time: these tests measure real time (windows, timeouts, a flood).
e2e() {
  [ -z "$1" ] || node --test --test-reporter=spec --test-concurrency=1 --test-timeout=900000 $1 || status=1
}
echo "== e2e, shared:$shared"
e2e "$shared"
if [ -n "$lane_pid" ]; then
  lane_status=0
  wait "$lane_pid" || lane_status=$?
  lane_pid=""
  echo "== e2e, provisioning lane (exit $lane_status):$provisioning"
  cat "$lane_log"
  [ "$lane_status" -eq 0 ] || status=1
fi
echo "== e2e, quiet (the machine to themselves):$quiet"
e2e "$quiet"
exit "$status"
