#!/bin/sh
# Makes every secret a deployment needs and writes them as one variables file for Ansible:
#   ansible/bin/make-secrets.sh --out DIR --gateways gw1,gw2 --brokers broker1
#                               [--core-names N,..] [--gateway-names N,..]
# DIR/pki      CAs, keys, certificates, the gateways' shared idempotency secret (`nonstop keygen`)
# DIR/ssh      broker tunnel keys and gateway host keys (ssh-keygen, Ed25519)
# DIR/knock    a knock secret and SPA keys per (gateway, broker) (`nonstop knock-secret`,
#              `nonstop spa-keygen`): the inventory uses one or the other (ansible/README.md)
# DIR/redis    a Redis password per gateway (the worker's and admin's are made on each broker)
# DIR/secrets.json   all of it as the vault_* variables the inventory refers to.
# Existing files are kept, so running it again after adding a host only adds that host's.
# Then: ansible-vault encrypt DIR/secrets.json, and keep DIR offline.
set -eu
here="$(cd "$(dirname "$0")/../.." && pwd)"
nonstop="${NONSTOP:-node $here/dist/cli/index.js}"
out="" gateways="gw1" brokers="broker1" core_names="" gateway_names=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --gateways) gateways="$2"; shift 2 ;;
    --brokers) brokers="$2"; shift 2 ;;
    --core-names) core_names="$2"; shift 2 ;;
    --gateway-names) gateway_names="$2"; shift 2 ;;
    *) echo "make-secrets: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "make-secrets: --out DIR is required" >&2; exit 2; }
umask 077
mkdir -p "$out/pki" "$out/ssh" "$out/knock" "$out/redis"
set -- --out "$out/pki" --brokers "$brokers" --gateways "$gateways"
[ -z "$core_names" ] || set -- "$@" --core-names "$core_names"
[ -z "$gateway_names" ] || set -- "$@" --gateway-names "$gateway_names"
$nonstop keygen "$@" >/dev/null
ifs_list() { echo "$1" | tr ',' ' '; }
password() { [ -f "$1" ] || openssl rand -base64 33 | tr -d '\n' >"$1"; }
for b in $(ifs_list "$brokers"); do
  [ -f "$out/ssh/broker-$b" ] || ssh-keygen -q -t ed25519 -N '' -C "nonstop-broker-$b" -f "$out/ssh/broker-$b"
done
for g in $(ifs_list "$gateways"); do
  [ -f "$out/ssh/gateway-$g" ] || ssh-keygen -q -t ed25519 -N '' -C "nonstop-gateway-$g" -f "$out/ssh/gateway-$g"
  password "$out/redis/gw-$g"
  for b in $(ifs_list "$brokers"); do
    f="$out/knock/$g-$b.json"
    [ -f "$f" ] || $nonstop knock-secret --gateway "$g" --client "$b" >"$f"
    f="$out/knock/$g-$b.spa.json"
    [ -f "$f" ] || $nonstop spa-keygen --client "$b" >"$f"
  done
done
GATEWAYS="$gateways" BROKERS="$brokers" OUT="$out" node --input-type=module -e '
import { readFileSync, writeFileSync } from "node:fs";
const out = process.env.OUT;
const read = (f) => readFileSync(`${out}/${f}`, "utf8");
const gateways = process.env.GATEWAYS.split(",");
const brokers = process.env.BROKERS.split(",");
const pair = (f) => ({ private: read(f), public: read(`${f}.pub`).trim() });
const each = (ids, f) => Object.fromEntries(ids.map((id) => [id, f(id)]));
const vars = {
  vault_tls: {
    ca_cert: read("pki/ca.crt"),
    core: { cert: read("pki/core.crt"), key: read("pki/core.key") },
    brokers: each(brokers, (b) => ({ cert: read(`pki/broker-${b}.crt`), key: read(`pki/broker-${b}.key`) })),
    gateways: each(gateways, (g) => ({ cert: read(`pki/gateway-${g}.crt`), key: read(`pki/gateway-${g}.key`) })),
  },
  vault_idempotency_secret: read("pki/idempotency.secret").trim(),
  vault_gateway_host_keys: each(gateways, (g) => pair(`ssh/gateway-${g}`)),
  vault_broker_ssh_keys: each(brokers, (b) => pair(`ssh/broker-${b}`)),
  vault_knock_secrets: each(gateways, (g) =>
    each(brokers, (b) => JSON.parse(read(`knock/${g}-${b}.json`)).guardClient.secret),
  ),
  vault_spa_keys: each(gateways, (g) => each(brokers, (b) => JSON.parse(read(`knock/${g}-${b}.spa.json`)))),
  vault_redis_passwords: {
    gateways: each(gateways, (g) => read(`redis/gw-${g}`)),
  },
};
writeFileSync(`${out}/secrets.json`, JSON.stringify(vars, null, 2) + "\n", { mode: 0o600 });
'
echo "$out/secrets.json"
