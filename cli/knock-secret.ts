// `nonstop knock-secret`: makes a secret for one client on one gateway and prints both halves:
// the entry for the guard's config and the entry for the client's profiles file.
import { newKnockSecret } from '../knock/rotating.js';
import { parseCommandArgs, UsageError, type Command } from './command.js';

const ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export const knockSecretCommand: Command = {
  name: 'knock-secret',
  help: `Usage: nonstop knock-secret --gateway ID --client NAME [options]

Prints one JSON object:
  "guardClient":  add it to "rotating.clients" in the gateway's guard config
  "profileName", "profile":  add it under "profiles" in the client's knock profiles file
The secret is printed once and stored nowhere else: keep both files private (mode 0600).

  --gateway ID      the gateway's id (the guard config's "gateway")
  --client NAME     the client's name (audit lines show it)
  --host HOST       the gateway's address, stored as the profile's default target
  --ssh-port N      SSH port (default 22)
  --profile NAME    the profile's name (default: the gateway id)
  --port-min N, --port-max N, --length N, --step-seconds N
                    rotation parameters; must equal the guard's "rotating" ones
                    (defaults 20000, 29999, 4, 30, as in the schema)`,
  run(argv) {
    const { values } = parseCommandArgs(argv, {
      gateway: { type: 'string' },
      client: { type: 'string' },
      host: { type: 'string' },
      'ssh-port': { type: 'string' },
      profile: { type: 'string' },
      'port-min': { type: 'string' },
      'port-max': { type: 'string' },
      length: { type: 'string' },
      'step-seconds': { type: 'string' },
    });
    if (values.help) {
      console.log(this.help);
      return Promise.resolve(0);
    }
    const gateway = values.gateway;
    const client = values.client;
    if (gateway === undefined || !ID.test(gateway))
      throw new UsageError('--gateway ID is required (a-z, 0-9, -)');
    if (client === undefined || !NAME.test(client))
      throw new UsageError('--client NAME is required (a-z, 0-9, ., _, -)');
    const num = (name: string, value: string | undefined, fallback: number) => {
      if (value === undefined) return fallback;
      if (!/^[0-9]{1,5}$/.test(value)) throw new UsageError(`--${name} must be a whole number`);
      return Number(value);
    };
    const secret = newKnockSecret();
    const rotation = {
      portMin: num('port-min', values['port-min'], 20000),
      portMax: num('port-max', values['port-max'], 29999),
      length: num('length', values.length, 4),
      stepSeconds: num('step-seconds', values['step-seconds'], 30),
    };
    const out = {
      guardClient: { name: client, secret },
      profileName: values.profile ?? gateway,
      profile: {
        ...(values.host !== undefined ? { host: values.host } : {}),
        sshPort: num('ssh-port', values['ssh-port'], 22),
        rotating: { gateway, client, secret, ...rotation },
      },
    };
    console.log(JSON.stringify(out, null, 2));
    return Promise.resolve(0);
  },
};
