#!/bin/sh
# The whole test suite: type check (the build), lint, format, then unit, integration and
# (as root) end-to-end tests. `npm test` runs scripts/setup.sh first.
set -eu
cd "$(dirname "$0")/.."

echo "== lint"
npx eslint --max-warnings=0 .
echo "== format"
npx prettier --check --log-level=warn .

suites="dist/test/unit dist/test/integration"
if [ "$(id -u)" -eq 0 ] && [ -d dist/test/e2e ]; then
  suites="$suites dist/test/e2e"
elif [ -d dist/test/e2e ]; then
  echo "== e2e: skipped, it needs root (network namespaces, nftables, sshd)"
fi
echo "== tests: $suites"
node --test --test-reporter=spec --test-timeout=120000 $suites
