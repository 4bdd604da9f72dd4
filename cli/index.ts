#!/usr/bin/env node
// `nonstop`: one CLI, a subcommand per role plus the tools around them.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { reportError, type Command } from './command.js';

/**
 * A command's name and one line for the overview; its module (and what it imports) is loaded
 * only when it runs, so a daemon holds the code of its own role and no other.
 */
interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  load(): Promise<Command>;
}

const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'gateway',
    summary: 'run a gateway: public HTTP(S) listeners that queue each request and answer with its reply',
    load: async () => (await import('./gateway.js')).gatewayCommand,
  },
  {
    name: 'broker',
    summary: 'run a broker: take queued requests, validate them, execute them at the core, reply',
    load: async () => (await import('./broker.js')).brokerCommand,
  },
  {
    name: 'core',
    summary: "run a core: execute brokers' requests exactly once against the database",
    load: async () => (await import('./core.js')).coreCommand,
  },
  {
    name: 'guard',
    summary: 'run the knock guard: nftables table, raw-socket knock reader, SSH window (root)',
    load: async () => (await import('./guard.js')).guardCommand,
  },
  {
    name: 'knock',
    summary:
      'send the knock sequence for a gateway (profile or static sequence), then ssh or carry a connection',
    load: async () => (await import('./knock.js')).knockCommand,
  },
  {
    name: 'knock-secret',
    summary: 'create a rotating-knock secret for a client and print its guard and profile entries',
    load: async () => (await import('./knock-secret.js')).knockSecretCommand,
  },
  {
    name: 'spa-keygen',
    summary: "create single-packet-authorization keys in fwknop's format (and a guard's spa.clients entry)",
    load: async () => (await import('./spa-keygen.js')).spaKeygenCommand,
  },
  {
    name: 'demo',
    summary: 'run inet, two gateways, two brokers and a core in network namespaces (root) and trace requests',
    load: async () => (await import('./demo.js')).demoCommand,
  },
  {
    name: 'local',
    summary: 'run core, broker and gateway on loopback and send sample requests through them',
    load: async () => (await import('./local.js')).localCommand,
  },
  {
    name: 'keygen',
    summary: 'create the CAs, keys and certificates for core, brokers and gateways',
    load: async () => (await import('./keygen.js')).keygenCommand,
  },
  {
    name: 'redis-acl',
    summary: "render each gateway's own Redis on this broker: redis.conf, ACL users, passwords, unit drop-in",
    load: async () => (await import('./redis-acl.js')).redisAclCommand,
  },
  {
    name: 'tunnel-routes',
    summary: "give this broker's routes to its gateways quickack, so tunnel ACKs are not delayed (root)",
    load: async () => (await import('./tunnel-routes.js')).tunnelRoutesCommand,
  },
  {
    name: 'render',
    summary:
      "render a host's sshd_config, nftables table or daemon config (gateway, guard, broker, core, knock)",
    load: async () => (await import('./render.js')).renderCommand,
  },
  {
    name: 'status',
    summary: "print each broker's tunnels, cells, queues and job counts from its status endpoint",
    load: async () => (await import('./status.js')).statusCommand,
  },
  {
    name: 'schemas',
    summary: "write the config files' JSON Schemas (for editors), or check written ones are current",
    load: async () => (await import('./schemas.js')).schemasCommand,
  },
  {
    name: 'check-config',
    summary: 'validate config files (any kind) and exit non-zero on the first broken one',
    load: async () => (await import('./check-config.js')).checkConfigCommand,
  },
];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `nonstop: serve a web application from machines the internet cannot connect to.

Usage: nonstop <command> [options]
       nonstop --version

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run "nonstop <command> --help" for a command's options.`;
}

/** The version in package.json (two folders up from dist/cli/index.js). */
function version(): string {
  const file = fileURLToPath(new URL('../../package.json', import.meta.url));
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    console.log(`nonstop ${version()}`);
    return 0;
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(overview());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    console.error(`nonstop: unknown command "${name}"\n\n${overview()}`);
    return 2;
  }
  try {
    return await (await command.load()).run(rest);
  } catch (err) {
    return reportError(err);
  }
}

process.exitCode = await main(process.argv.slice(2));
