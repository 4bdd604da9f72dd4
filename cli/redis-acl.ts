// `nonstop redis-acl --config BROKER.json --out DIR`: the broker side's Redis users.
import { writeAcl } from '../broker/redis-acl.js';
import { loadConfig } from '../config/load.js';
import { parseCommandArgs, UsageError, type Command } from './command.js';

export const redisAclCommand: Command = {
  name: 'redis-acl',
  summary: "render the broker side's Redis ACL file: one confined user per gateway, a worker user",
  help: `Usage: nonstop redis-acl --config FILE --out DIR [--gateways IDS]

Writes DIR/users.acl (Redis "aclfile" format; point redis.conf's aclfile at it) and a
password file per user, DIR/<user>.password, mode 0600:

  nonstop-gw-<id>   one per gateway: only its own queue's keys (<prefix>:gw-<id>:*) and
                    the commands BullMQ's Queue.add and the reply read need; no Pub/Sub
  <worker user>     the brokers: every listed gateway's keys, the commands BullMQ's
                    Worker needs (redis.username of the broker config, else nonstop-broker)
  nonstop-admin     administration (all commands, all keys)
  default           switched off

Existing password files are kept, so running it again after adding a gateway changes no
one else's password. Then: redis-cli ACL LOAD (as nonstop-admin), or restart Redis.

Options:
  -c, --config FILE   broker config file: its redis.prefix, redis.username and gateways
  --out DIR           folder to write into (created mode 0700 if missing)
  --gateways IDS      comma-separated gateway ids to add to the config's
  -h, --help          show this help`,
  run(argv) {
    const { values } = parseCommandArgs(argv, {
      config: { type: 'string', short: 'c' },
      out: { type: 'string' },
      gateways: { type: 'string' },
    });
    if (values.help) {
      console.log(this.help);
      return Promise.resolve(0);
    }
    if (values.config === undefined) throw new UsageError('redis-acl needs --config FILE');
    if (values.out === undefined) throw new UsageError('redis-acl needs --out DIR');
    const config = loadConfig('broker', values.config);
    const extra = (values.gateways ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
    for (const id of extra) {
      if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(id))
        throw new UsageError(`--gateways: "${id}" is not a gateway id`);
    }
    const gatewayIds = [...new Set([...config.gateways.map((g) => g.id), ...extra])];
    const result = writeAcl(values.out, {
      prefix: config.redis.prefix,
      gatewayIds,
      ...(config.redis.username === undefined ? {} : { workerUser: config.redis.username }),
    });
    for (const file of result.written) console.log(`wrote ${file}`);
    return Promise.resolve(0);
  },
};
