// `nonstop render <artefact> --input FILE.json [--out FILE]`: a host's sshd_config, the gateway
// tunnel user's authorized_keys, the core's nftables table, and the daemons' configs (gateway,
// guard, broker, core, knock profiles), from one JSON document that Ansible writes from the
// inventory. The world renders the same artefacts with the same functions.
import { readFileSync } from 'node:fs';
import type { ValidateFunction } from 'ajv';
import { createAjv } from '../config/ajv.js';
import { describeErrors, formatProblems } from '../config/errors-format.js';
import { deepFreeze, parseJson, readConfigText } from '../config/load.js';
import { brokerDocument, type BrokerInput } from '../config/render/broker.js';
import { coreDocument, type CoreInput } from '../config/render/core.js';
import { gatewayDocument, type GatewayInput } from '../config/render/gateway.js';
import { guardDocument, type GuardInput } from '../config/render/guard.js';
import { knockProfilesDocument, type KnockProfilesInput } from '../config/render/knock.js';
import {
  brokerInputSchema,
  coreInputSchema,
  gatewayInputSchema,
  guardInputSchema,
  knockInputSchema,
  nftablesInputSchema,
  sshdInputSchema,
  type NftablesInput,
  type SshdInput,
} from '../config/schemas/render.js';
import { renderCoreRuleset } from '../core/firewall.js';
import { renderSshdConfig, renderTunnelAuthorizedKeys, type SshdOptions } from '../gateway/sshd-config.js';
import { errors } from '../lib/errors.js';
import { writeAtomically } from '../lib/write-atomically.js';
import { parseCommandArgs, UsageError, type Command } from './command.js';

const ajv = createAjv({ useDefaults: true });
const validateSshd = ajv.compile(sshdInputSchema);
const validateNftables = ajv.compile(nftablesInputSchema);
// The host configs' inputs fill no defaults: what the input leaves out, the builder decides.
const strictAjv = createAjv();
const validateGateway = strictAjv.compile(gatewayInputSchema);
const validateGuard = strictAjv.compile(guardInputSchema);
const validateBroker = strictAjv.compile(brokerInputSchema);
const validateCore = strictAjv.compile(coreInputSchema);
const validateKnock = strictAjv.compile(knockInputSchema);

/** A config document as its daemon reads it: JSON, two-space indented, one newline at the end. */
function json(doc: unknown): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function validated<T>(validate: ValidateFunction, file: string, doc: unknown): T {
  const copy = structuredClone(doc);
  if (!validate(copy)) {
    const problems = describeErrors(validate.errors);
    throw errors.CONFIG_INVALID(formatProblems(file, problems), problems);
  }
  return deepFreeze(copy) as T;
}

const GATEWAY_ONLY = ['tunnelUser', 'tunnelAuthorizedKeysFile', 'brokers'] as const;

/** The schema's input as the renderer's options; the role decides which fields belong. */
export function sshdOptions(file: string, input: SshdInput): SshdOptions {
  const fail = (field: string, expected: string) =>
    errors.CONFIG_INVALID(`${file}: field "${field}" ${expected}`);
  const common = {
    port: input.port,
    listenAddresses: input.listenAddresses,
    hostKeys: input.hostKeys,
    allowGroups: input.allowGroups,
    ...(input.authorizedKeysFile === undefined ? {} : { authorizedKeysFile: input.authorizedKeysFile }),
  };
  if (input.role === 'gateway') {
    for (const field of GATEWAY_ONLY)
      if (input[field] === undefined) throw fail(field, 'is required for role "gateway"');
    if (input.jumpTargets !== undefined) throw fail('jumpTargets', 'is for role "broker" only');
    return {
      ...common,
      role: 'gateway',
      tunnelUser: input.tunnelUser!,
      tunnelAuthorizedKeysFile: input.tunnelAuthorizedKeysFile!,
      brokers: input.brokers!,
    };
  }
  for (const field of GATEWAY_ONLY)
    if (input[field] !== undefined) throw fail(field, 'is for role "gateway" only');
  if (input.role === 'core' && input.jumpTargets !== undefined)
    throw fail('jumpTargets', 'is for role "broker" only');
  return {
    ...common,
    role: input.role,
    ...(input.jumpTargets === undefined ? {} : { jumpTargets: input.jumpTargets }),
  };
}

const ARTEFACTS: Record<string, (file: string, doc: unknown) => string> = {
  sshd: (file, doc) => renderSshdConfig(sshdOptions(file, validated<SshdInput>(validateSshd, file, doc))),
  'tunnel-authorized-keys': (file, doc) => {
    const options = sshdOptions(file, validated<SshdInput>(validateSshd, file, doc));
    if (options.role !== 'gateway' && options.role !== undefined)
      throw errors.CONFIG_INVALID(`${file}: field "role" must be "gateway" for tunnel-authorized-keys`);
    return renderTunnelAuthorizedKeys(options.brokers);
  },
  nftables: (file, doc) => renderCoreRuleset(validated<NftablesInput>(validateNftables, file, doc)),
  gateway: (file, doc) => json(gatewayDocument(validated<GatewayInput>(validateGateway, file, doc))),
  guard: (file, doc) => json(guardDocument(validated<GuardInput>(validateGuard, file, doc))),
  broker: (file, doc) => json(brokerDocument(validated<BrokerInput>(validateBroker, file, doc))),
  core: (file, doc) => json(coreDocument(validated<CoreInput>(validateCore, file, doc))),
  knock: (file, doc) => json(knockProfilesDocument(validated<KnockProfilesInput>(validateKnock, file, doc))),
};

/** Renders `artefact` from a parsed input document; `file` names it in errors. */
export function renderArtefact(artefact: string, file: string, doc: unknown): string {
  const render = ARTEFACTS[artefact];
  if (render === undefined)
    throw new UsageError(`render: unknown artefact "${artefact}" (${Object.keys(ARTEFACTS).join(', ')})`);
  return render(file, doc);
}

/** FILE, or fd 0 for `-` (not /dev/stdin: a chroot, where Ansible runs it too, may lack /proc). */
function readInput(file: string): string {
  if (file !== '-') return readConfigText(file);
  try {
    return readFileSync(0, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? String(err);
    throw errors.CONFIG_UNREADABLE(`(stdin): cannot read the input (${reason})`, undefined, { cause: err });
  }
}

/** Artefacts that carry secrets (knock secrets): written for their owner only. */
const SECRET_ARTEFACTS = new Set(['guard', 'knock']);

export const renderCommand: Command = {
  name: 'render',
  help: `Usage: nonstop render <artefact> --input FILE [--out FILE]

Renders one artefact from a JSON input document (FILE, or - for stdin) to stdout or --out.
Ansible writes the input from the inventory; the test world renders with the same code.

Artefacts and their input:
  sshd                     the whole sshd_config of a host: {"role": "gateway"|"broker"|"core",
                           "port", "listenAddresses" ([] = every address), "hostKeys",
                           "allowGroups", "authorizedKeysFile"; gateway: "tunnelUser",
                           "tunnelAuthorizedKeysFile", "brokers": [{"id", "publicKey", "port",
                           "previousPublicKey" (during a rotation)}];
                           broker: "jumpTargets" (host:port admins may ProxyJump to)}
  tunnel-authorized-keys   the gateway tunnel user's authorized_keys, from the same document
  nftables                 the core's table inet nonstop_host: {"role": "core", "addresses",
                           "brokers" (their private addresses), "listenPort" (9443), "sshPort"
                           (22), "icmpEcho" (true), "egress": [{"protocol", "ports", "to"}]}
                           Gateways and brokers load the guard's: nonstop guard --print-ruleset.
  gateway                  gateway.json: {"id", "configDir" (its routes.json, tls/gateway.crt,
                           tls/gateway.key, redis-password, idempotency-secret), "tunnels":
                           [{"broker", "port"}] (each broker's loopback port on it); optional
                           "listenHost" ("::"), "httpPort", "httpsPort", "httpMode" ("redirect"),
                           "redisPrefix", "limits", "replyTimeoutMs"}
  guard                    guard.json of a gateway's or a broker's knock guard: {"role": "gateway"|
                           "broker", "id", "sshPort", "windowSeconds", "rotation": {"portMin",
                           "portMax", "length", "stepSeconds"}, "clients": [{"name", "secret"}],
                           "static": [{"name", "sequence"}]; gateway: "httpPort", "httpsPort"}
                           A broker's needs a client or a static sequence (its admins' knock).
  broker                   broker.json: {"id", "configDir" (routes.json, tls/ca.crt, tls/broker.crt,
                           tls/broker.key, ssh/id_ed25519, knock/<gateway>.secret), "core": {"url",
                           "serverName"}, "gateways": [{"id", "address", "sshPort", "tunnelUser",
                           "hostKeyFingerprint", "remotePort", "redisPort", "knock" (true)}];
                           optional "redisDir" (<configDir>/redis), "redisFirstPort" (6401),
                           "redisWorkerUser", "redisPrefix", "redisServer", "rotation",
                           "concurrency", "tunnels", "statusPort"}
  core                     core.json: {"configDir" (routes.json, tls/ca.crt, tls/core.crt,
                           tls/core.key), "privateAddress" (the only address it listens on),
                           "port" (9443), "database": {"postgres": {"user", "database", "port",
                           "socketDir"}} or {"embedded": {"dataDir"}}, "application", "brokerUnit"}
  knock                    knock profiles (kind "knock") for one client: {"client", "rotation",
                           "gateways": [{"id", "address", "sshPort", "secret", "profile"}]}

Options:
  --input FILE   the input document (- reads stdin)
  --out FILE     write here (atomically; mode 0644, guard and knock 0600) instead of stdout
  -h, --help     show this help`,
  run(argv) {
    const { values, positionals } = parseCommandArgs(
      argv,
      { input: { type: 'string', short: 'i' }, out: { type: 'string', short: 'o' } },
      true,
    );
    if (values.help) {
      console.log(this.help);
      return Promise.resolve(0);
    }
    const [artefact, ...extra] = positionals;
    if (artefact === undefined)
      throw new UsageError(`render needs an artefact (${Object.keys(ARTEFACTS).join(', ')})`);
    if (extra.length > 0) throw new UsageError(`render: unexpected argument "${extra[0]}"`);
    if (values.input === undefined) throw new UsageError('render needs --input FILE');
    const name = values.input === '-' ? '(stdin)' : values.input;
    const text = renderArtefact(artefact, name, parseJson(name, readInput(values.input)));
    if (values.out === undefined) process.stdout.write(text);
    else writeAtomically(values.out, text, SECRET_ARTEFACTS.has(artefact) ? 0o600 : 0o644);
    return Promise.resolve(0);
  },
};
