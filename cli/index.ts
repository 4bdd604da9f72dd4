#!/usr/bin/env node
// `nonstop`: one CLI, a subcommand per role plus the tools around them.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { brokerCommand } from './broker.js';
import { checkConfigCommand } from './check-config.js';
import { reportError, type Command } from './command.js';
import { coreCommand } from './core.js';
import { demoCommand } from './demo.js';
import { gatewayCommand } from './gateway.js';
import { guardCommand } from './guard.js';
import { keygenCommand } from './keygen.js';
import { knockSecretCommand } from './knock-secret.js';
import { knockCommand } from './knock.js';
import { localCommand } from './local.js';
import { redisAclCommand } from './redis-acl.js';
import { renderCommand } from './render.js';
import { schemasCommand } from './schemas.js';

const COMMANDS: readonly Command[] = [
  gatewayCommand,
  brokerCommand,
  coreCommand,
  guardCommand,
  knockCommand,
  knockSecretCommand,
  demoCommand,
  localCommand,
  keygenCommand,
  redisAclCommand,
  renderCommand,
  schemasCommand,
  checkConfigCommand,
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
    return await command.run(rest);
  } catch (err) {
    return reportError(err);
  }
}

process.exitCode = await main(process.argv.slice(2));
