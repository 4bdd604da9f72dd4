// `nonstop tunnel-routes --config BROKER.json`: a host route with quickack to each gateway the
// broker tunnels into (broker/tunnel-routes.ts says why). Root or CAP_NET_ADMIN; Ansible runs it
// from nonstop-tunnel-routes.service before the broker, the test world in each broker's host.
import { applyTunnelRoutes } from '../broker/tunnel-routes.js';
import { loadConfig } from '../config/load.js';
import { parseCommandArgs, UsageError, type Command } from './command.js';

export const tunnelRoutesCommand: Command = {
  name: 'tunnel-routes',
  help: `Usage: nonstop tunnel-routes --config FILE [--dry-run]

For every address of every gateway in the broker config (gateways[].ssh.host, names resolved):
looks up the route this host takes to it now and replaces it with the same way as a host route
(/32, /128) with "quickack 1", so that the tunnel's ACKs are not delayed. Running it again
changes nothing. Prints each "ip" command.

Options:
  -c, --config FILE   broker config file
  --dry-run           print the commands, change nothing
  -h, --help          show this help`,
  async run(argv) {
    const { values } = parseCommandArgs(argv, {
      config: { type: 'string', short: 'c' },
      'dry-run': { type: 'boolean' },
    });
    if (values.help) {
      console.log(this.help);
      return 0;
    }
    if (values.config === undefined) throw new UsageError('tunnel-routes needs --config FILE');
    const config = loadConfig('broker', values.config);
    const done = await applyTunnelRoutes(config, { dryRun: values['dry-run'] === true });
    for (const args of done) console.log(`ip ${args.join(' ')}`);
    if (done.length === 0) console.log('no gateway is reached over SSH: nothing to do');
    return 0;
  },
};
