#!/bin/sh
# Idempotent set-up for a fresh machine of this kind: the Debian packages nonstop's tests and
# demo use, the npm packages pinned by package-lock.json, and the TypeScript build.
# Run by `npm start` and `npm test` before anything else; safe to run again.
set -eu
cd "$(dirname "$0")/.."

# Debian packages (binaries the tests drive for real, Chromium for the browser test; a compiler for the native npm addons,
# raw-socket's). Installed only when missing.
APT_PACKAGES="g++ make python3 openssl curl nghttp2-client nftables openssh-server openssh-client knockd nmap iproute2 redis-server postgresql ansible ansible-lint mmdebstrap systemd systemd-container nginx chromium libnss3-tools pebble faketime fwknop-client fwknop-server"
missing=""
for pkg in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ] && [ "$(id -u)" -ne 0 ]; then
  # Without root nothing can be installed; what runs without them still runs (`npm run local`
  # needs only redis-server, and the compiler on a first npm install), the rest fails naming them.
  echo "setup: these Debian packages are missing:$missing; run this as root to install them" >&2
elif [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  # Installing must not start the packages' system services (nginx on port 80, redis-server,
  # PostgreSQL, sshd): nonstop runs its own daemons inside network namespaces. policy-rc.d is Debian's
  # switch for that; one already there is left alone.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

# npm packages, only when the lockfile changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  # The native addons build against the running Node's own headers when they are installed beside
  # it (Node's tarballs and NodeSource's package have them), instead of downloading them from
  # nodejs.org: a machine that reaches only the npm registry builds them too. A nodedir set in
  # npm's config wins.
  node_prefix=$(node -p 'require("node:path").resolve(process.execPath, "../..")')
  if [ -z "$(npm config get nodedir 2>/dev/null | grep -Ev '^(null|undefined)?$' || true)" ] &&
    [ -f "$node_prefix/include/node/node.h" ]; then
    export npm_config_nodedir="$node_prefix"
  fi
  npm ci --no-audit --no-fund --loglevel=error
fi

npm run --silent build
