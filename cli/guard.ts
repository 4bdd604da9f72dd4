// `nonstop guard --config FILE`: the knock guard daemon of a gateway.
import { loadGuardConfig } from '../config/knock.js';
import { createLogger } from '../lib/log.js';
import { parseCommandArgs, UsageError, untilSignal, type Command } from './command.js';

export const guardCommand: Command = {
  name: 'guard',
  help: `Usage: nonstop guard --config FILE [--print-ruleset]

Loads the nftables table "inet nonstop" rendered from FILE (a "guard" config), then reads knocks
and opens the SSH port for a source address that sends a valid sequence, for windowSeconds.
Logs one JSON line per event to stdout, including one audit line per opened, failed and expired
knock attempt. Needs root (or CAP_NET_ADMIN and CAP_NET_RAW).

  -c, --config FILE  the guard config file
  --print-ruleset    print the nftables ruleset the guard would load, and exit`,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      config: { type: 'string', short: 'c' },
      'print-ruleset': { type: 'boolean' },
    });
    if (values.help) {
      console.log(this.help);
      return 0;
    }
    if (values.config === undefined) throw new UsageError('guard needs --config FILE');
    const config = loadGuardConfig(values.config);
    const log = createLogger('guard', { level: config.logLevel });
    const { KnockGuard } = await import('../knock/guard.js');
    const guard = new KnockGuard(config, log);
    if (values['print-ruleset']) {
      process.stdout.write(guard.ruleset());
      return 0;
    }
    const stopped = untilSignal();
    await guard.start();
    const reason = await Promise.race([stopped, guard.failed]);
    if (reason instanceof Error) {
      await guard.stop();
      log.flush();
      return 1;
    }
    log.info({ event: 'signal', signal: reason }, 'shutting down');
    await guard.stop();
    log.flush();
    return 0;
  },
};
