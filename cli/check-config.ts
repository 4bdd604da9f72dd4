// `nonstop check-config FILE…`: validates config files the way the daemons do at start.
import { dirname, resolve } from 'node:path';
import { kindOf, parseJson, readConfigText, validateConfig } from '../config/load.js';
import { parseGuardConfig, parseKnockConfig } from '../config/knock.js';
import { loadRoutes, parseRoutes } from '../config/routes.js';
import { checkClientAddress } from '../config/client-address.js';
import { checkStaticMounts } from '../config/static-mounts.js';
import { parseCommandArgs, UsageError, type Command } from './command.js';

export const checkConfigCommand: Command = {
  name: 'check-config',
  help: `Usage: nonstop check-config FILE...

Validates each file against the schema of its kind (the "kind" field: gateway, broker,
core, routes, guard or knock) exactly as the daemons do at start, including route schema strictness.
Prints "ok" per good file; for a broken one, the file, the field and what was expected.
Exit code: 0 when every file is valid, 1 otherwise.`,
  async run(argv) {
    const { values, positionals } = parseCommandArgs(argv, {}, true);
    if (values.help) {
      console.log(this.help);
      return 0;
    }
    if (positionals.length === 0) throw new UsageError('check-config needs at least one FILE');
    let failed = 0;
    for (const file of positionals) {
      try {
        const doc = parseJson(file, readConfigText(file));
        const kind = kindOf(file, doc);
        if (kind === 'routes') parseRoutes(file, doc);
        else if (kind === 'guard') parseGuardConfig(file, doc);
        else if (kind === 'knock') parseKnockConfig(file, doc);
        else if (kind === 'gateway') {
          const config = validateConfig(kind, file, doc);
          checkClientAddress(file, config);
          // Static mounts are checked against the folders and the route table, as at start.
          if (config.static.length > 0) checkStaticMounts(file, config.static, loadRoutes(config.routes));
        } else if (kind === 'core') {
          const config = validateConfig(kind, file, doc);
          // Its application and upstreams against the route table, as at start.
          const { checkHandlers, loadApplication, NO_APPLICATION } =
            await import('../core/load-application.js');
          const { checkUpstreams } = await import('../core/upstream/targets.js');
          const upstreams = checkUpstreams(config.upstreams, dirname(resolve(file)));
          for (const u of upstreams) u.agent.destroy();
          const app =
            config.application === null
              ? NO_APPLICATION
              : await loadApplication(config.application, dirname(resolve(file)));
          checkHandlers(app, loadRoutes(config.routes), upstreams);
        } else validateConfig(kind, file, doc);
        console.log(`${file}: ok (${kind})`);
      } catch (err) {
        failed += 1;
        console.error((err as Error).message);
      }
    }
    return failed === 0 ? 0 : 1;
  },
};
