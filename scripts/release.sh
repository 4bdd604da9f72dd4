#!/bin/sh
# Builds the release bundle Ansible installs on every host: the `npm pack` tarball's files, the
# production dependencies (native addons built for this machine's architecture and glibc) and
# this machine's Node.js binary (>= 20), as one tar.gz.
# Usage: scripts/release.sh [OUT_DIR]   (default: ./release); prints the bundle's path.
# Build it on Debian 12 amd64 (or what the hosts run): raw-socket is compiled here.
set -eu
cd "$(dirname "$0")/.."
out="$(mkdir -p "${1:-release}" && cd "${1:-release}" && pwd)"
node -e 'if (+process.versions.node.split(".")[0] < 20) { console.error("release: Node >= 20 needed, this is " + process.version); process.exit(1) }'
npm run --silent build >&2
version="$(node -p 'require("./package.json").version')"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
npm pack --silent --pack-destination "$work" >/dev/null
tar -xzf "$work/nonstop-$version.tgz" -C "$work"
# Production dependencies without a registry: the installed tree, pruned of dev packages.
cp package-lock.json "$work/package/"
cp -a node_modules "$work/package/"
(cd "$work/package" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >&2)
mkdir -p "$work/package/node/bin"
cp "$(command -v node)" "$work/package/node/bin/node"
bundle="$out/nonstop-$version-linux-$(uname -m).tar.gz"
# Fixed owner and times so the same tree gives the same bytes (Ansible copies by checksum).
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work" -cf - package | gzip -n >"$bundle"
echo "$bundle"
