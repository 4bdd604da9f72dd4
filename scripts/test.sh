#!/bin/sh
# The whole test suite: type check (the build), lint, format, then unit, integration and
# (as root) end-to-end tests. `npm test` runs scripts/setup.sh first.
set -eu
cd "$(dirname "$0")/.."

echo "== lint"
npx eslint --max-warnings=0 .
echo "== format"
npx prettier --check --log-level=warn .

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
  echo "== tests:$selected"
  node --test --test-reporter=spec --test-concurrency=1 --test-timeout=900000 $selected
  exit
fi

# The provisioning suites (test/e2e/ansible-*: Debian hosts booted with systemd-nspawn and
# converged by ansible-playbook; fresh-machine: the README's commands in a fresh Debian
# container) are a lane of their own, run beside everything else: they are
# most of the e2e suite's time, they share nothing with the other tests (their hosts, machine
# names and folders carry their process id; no other test boots a container) and they measure
# no time. Their output follows the rest's, and either lane failing fails the run.
lane_pid=""
lane_log="$services_dir/e2e-provisioning.log"
lane_stop() {
  if [ -n "$lane_pid" ]; then kill -INT "$lane_pid" 2>/dev/null || true; wait "$lane_pid" 2>/dev/null || true; fi
  services_stop
}
trap lane_stop EXIT
provisioning=""
others=""
if [ -d dist/test/e2e ] && [ "$(id -u)" -eq 0 ]; then
  for f in dist/test/e2e/*.test.js; do
    case "$f" in
      dist/test/e2e/ansible-* | dist/test/e2e/fresh-machine.test.js) provisioning="$provisioning $f" ;;
      *) others="$others $f" ;;
    esac
  done
  if [ -n "$provisioning" ]; then
    echo "== e2e, provisioning lane (beside the rest; its output comes at the end):$provisioning"
    node --test --test-reporter=spec --test-concurrency=1 --test-timeout=900000 $provisioning \
      >"$lane_log" 2>&1 &
    lane_pid=$!
  fi
fi

status=0
suites=""
for dir in dist/test/unit dist/test/integration; do
  if [ -d "$dir" ]; then suites="$suites $dir"; fi
done
if [ -n "$suites" ]; then
  echo "== tests:$suites"
  node --test --test-reporter=spec --test-timeout=120000 $suites || status=1
fi

if [ -d dist/test/e2e ]; then
  if [ "$(id -u)" -eq 0 ]; then
    # One file at a time: these tests measure real time (windows, timeouts, a flood).
    echo "== e2e:$others"
    node --test --test-reporter=spec --test-concurrency=1 --test-timeout=900000 $others || status=1
  else
    echo "== e2e: skipped, it needs root (network namespaces, nftables, sshd)"
  fi
fi

if [ -n "$lane_pid" ]; then
  lane_status=0
  wait "$lane_pid" || lane_status=$?
  lane_pid=""
  echo "== e2e, provisioning lane (exit $lane_status):$provisioning"
  cat "$lane_log"
  [ "$lane_status" -eq 0 ] || status=1
fi
exit "$status"
