// `nonstop keygen`: the CAs, keys and certificates a deployment needs, made with openssl, and
// the gateways' shared idempotency secret.
import { join } from 'node:path';
import { writeIdempotencySecret } from '../gateway/idempotency-secret.js';
import { DEFAULT_CORE_NAMES, generatePki } from '../lib/pki.js';
import { parseCommandArgs, UsageError, type Command } from './command.js';

export const keygenCommand: Command = {
  name: 'keygen',
  help: `Usage: nonstop keygen --out DIR [options]

Creates EC P-256 keys and certificates with the openssl CLI:

  ca.crt, ca.key                 internal CA (core <-> broker mutual TLS)
  core.crt, core.key             the core's server certificate, signed by the internal CA
  broker-<id>.crt, .key          a client certificate per broker (CN=<id>, OU=nonstop-broker),
                                 signed by the internal CA
  public-ca.crt, public-ca.key   a separate CA for gateway server certificates
  gateway-<id>.crt, .key         a server certificate per gateway, signed by the public CA,
                                 so it can never pass as a broker client certificate
  idempotency.secret             32 random bytes (base64) that every gateway of the deployment
                                 shares (gateway config "idempotency.secretFile")

Private keys and the secret are written mode 0600. Existing files are kept (run it again to add a broker
or a gateway); --force replaces everything. A CA made anew re-issues every cert it signs.

Options:
  --out DIR              folder to write into (created if missing)
  --brokers IDS          comma-separated broker ids (default: b1)
  --gateways IDS         comma-separated gateway ids (default: gw1)
  --core-names NAMES     DNS names and IPs of the core certificate
                         (default: ${DEFAULT_CORE_NAMES.join(',')})
  --gateway-names NAMES  extra DNS names and IPs of each gateway certificate
                         (localhost and 127.0.0.1 are always included)
  --days N               validity of leaf certificates in days (default: 825; CAs: 10x)
  --force                replace existing files
  -h, --help             show this help`,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      out: { type: 'string' },
      brokers: { type: 'string' },
      gateways: { type: 'string' },
      'core-names': { type: 'string' },
      'gateway-names': { type: 'string' },
      days: { type: 'string' },
      force: { type: 'boolean' },
    });
    if (values.help) {
      console.log(this.help);
      return 0;
    }
    if (values.out === undefined) throw new UsageError('keygen needs --out DIR');
    const days = values.days === undefined ? undefined : Number(values.days);
    if (days !== undefined && (!Number.isInteger(days) || days < 1)) {
      throw new UsageError(`--days must be a positive integer (got "${values.days}")`);
    }
    const pki = await generatePki({
      dir: values.out,
      brokers: list(values.brokers),
      gateways: list(values.gateways),
      coreNames: list(values['core-names']),
      gatewayNames: list(values['gateway-names']),
      days,
      force: values.force === true,
    });
    const secret = join(values.out, 'idempotency.secret');
    const written = [...pki.written];
    if (writeIdempotencySecret(secret, { keep: values.force !== true })) written.push(secret);
    if (written.length === 0) console.log(`${values.out}: every file already exists; nothing written`);
    for (const file of written) console.log(`wrote ${file}`);
    return 0;
  },
};

function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}
