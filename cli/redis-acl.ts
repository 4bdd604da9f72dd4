// `nonstop redis-acl --config BROKER.json --out DIR`: every gateway's own Redis on this broker,
// its redis.conf, its ACL users and its unit drop-in (broker/redis-config.ts; the world renders
// the same way and gives each Redis the same budget in a cgroup).
import { redisInstance, renderBrokerRedis } from '../broker/redis-config.js';
import { applyAclPasswords } from '../broker/redis-passwords.js';
import { loadConfig } from '../config/load.js';
import { parseCommandArgs, UsageError, type Command } from './command.js';

export const redisAclCommand: Command = {
  name: 'redis-acl',
  help: `Usage: nonstop redis-acl --config FILE --out DIR [--install-dir DIR] [--systemd]

For each gateway of the broker config, one Redis server of its own. Writes into DIR/<gateway>/:

  redis.conf        start it with: redis-server DIR/<gateway>/redis.conf. Loopback only, on the
                    port of gateways[].redis.port (else redis.port); its own maxmemory
                    (noeviction), maxclients, client buffer limits, idle timeout and
                    proto-max-bulk-len (the config's redisServer section); no RDB, no AOF.
  users.acl         its ACL (Redis "aclfile" format; only SHA-256 of the passwords):
    nonstop-gw-<id>   that gateway: only its own queue's keys (<prefix>:gw-<id>:*) and the
                      commands BullMQ's Queue.add and the reply read need; no Pub/Sub
    <worker user>     this broker's worker for that gateway (gateways[].redis.username, else
                      redis.username, else nonstop-broker)
    nonstop-admin     administration (all keys; nothing that writes to disk or changes config)
    default           switched off
  <user>.password   each user's password, mode 0600
  <user>.previous-password
                    optional, put there for a rotation: that user's second password, which
                    opens too until it is removed (README, "Rotating credentials")
  unit.conf         the systemd drop-in of its unit (install it as
                    /etc/systemd/system/redis-server@nonstop-<gateway>.service.d/nonstop.conf):
                    LimitCORE=0, MemoryMax (2 × maxmemory + 64M), MemorySwapMax=0, and its CPU
                    budget: CPUWeight (redisServer.cpuWeight, below the broker's 100) and
                    CPUQuota (redisServer.cpuQuotaPercent of one CPU; empty when null)

Every password is that Redis's own, so it opens no other gateway's Redis. Existing password
files are kept (put a gateway's password there first to choose it); files that would not
change are not rewritten, and each file written is printed ("wrote FILE"); an ACL that changed
in its passwords only is printed as "passwords FILE": a running Redis takes that change with
--apply-passwords, no restart.

Options:
  -c, --config FILE    broker config file: redis, redisServer and gateways
  --out DIR            folder to write into (created mode 0700 if missing)
  --install-dir DIR    where the files will be on the host, when not DIR (paths in redis.conf)
  --systemd            for Debian's redis-server@.service, instance nonstop-<gateway>
                       (/etc/redis/redis-nonstop-<gateway>.conf: this redis.conf)
  --apply-passwords    then set every user's passwords in each running Redis (on this host's
                       loopback, as nonstop-admin) to what its ACL now holds: ACL SETUSER, which
                       keeps every connected client (ACL LOAD or a restart would drop them)
  -h, --help           show this help`,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      config: { type: 'string', short: 'c' },
      out: { type: 'string' },
      'install-dir': { type: 'string' },
      systemd: { type: 'boolean' },
      'apply-passwords': { type: 'boolean' },
    });
    if (values.help) {
      console.log(this.help);
      return 0;
    }
    if (values.config === undefined) throw new UsageError('redis-acl needs --config FILE');
    if (values.out === undefined) throw new UsageError('redis-acl needs --out DIR');
    const config = loadConfig('broker', values.config);
    const installDir = values['install-dir'];
    const servers = renderBrokerRedis(config, values.out, {
      ...(installDir === undefined ? {} : { installDir }),
      systemd: values.systemd === true,
    });
    for (const s of servers) {
      for (const file of s.written)
        console.log(`${file === s.aclFile && s.passwordsOnly ? 'passwords' : 'wrote'} ${file}`);
      if (values.systemd === true)
        console.log(`gateway ${s.gatewayId}: redis-server@${redisInstance(s.gatewayId)} on port ${s.port}`);
    }
    if (values['apply-passwords'] === true) {
      for (const s of servers) {
        await applyAclPasswords(s);
        console.log(
          `applied passwords of ${s.users.length} users to the Redis of ${s.gatewayId} on port ${s.port}`,
        );
      }
    }
    return 0;
  },
};
