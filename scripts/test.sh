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

suites=""
for dir in dist/test/unit dist/test/integration; do
  if [ -d "$dir" ]; then suites="$suites $dir"; fi
done
if [ -n "$suites" ]; then
  echo "== tests:$suites"
  node --test --test-reporter=spec --test-timeout=120000 $suites
fi

if [ -d dist/test/e2e ]; then
  if [ "$(id -u)" -eq 0 ]; then
    # One file at a time: these tests measure real time (windows, timeouts, a flood).
    echo "== e2e: dist/test/e2e"
    node --test --test-reporter=spec --test-concurrency=1 --test-timeout=900000 dist/test/e2e
  else
    echo "== e2e: skipped, it needs root (network namespaces, nftables, sshd)"
  fi
fi
