// Interim: the part of the three-tier world the direct and peer rows need (inet, a broker host,
// the core on the private segment with PGlite), until world/three-tier.ts lands.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatePki, type Pki } from '../lib/pki.js';
import { World, packageRoot, type Host, type HostProcess } from '../world/world.js';

export interface BaseWorld {
  readonly world: World;
  readonly inet: Host;
  readonly broker: Host;
  readonly core: { host: Host; ip: string; port: number; process: HostProcess };
  readonly pki: Pki;
  close(): Promise<void>;
}

export async function startBaseWorld(): Promise<BaseWorld> {
  const world = await World.create();
  try {
    const inet = await world.addHost('inet', { public: 1 });
    const broker = await world.addHost('broker-b1', { public: 1, private: 1 });
    const coreHost = await world.addHost('core', { private: 1 });
    const ip = coreHost.addresses.private.v4[0]!;
    const pki = await generatePki({
      dir: join(world.dir, 'pki'),
      brokers: ['b1'],
      gateways: ['gw1', 'peer'],
      coreNames: ['core', ip],
      gatewayNames: ['198.18.0.10', '198.18.0.11', '198.18.0.12', '198.18.0.13', '198.18.0.14'],
    });
    const config = join(world.dir, 'core.json');
    writeFileSync(
      config,
      JSON.stringify({
        kind: 'core',
        routes: join(packageRoot(), 'config/examples/routes.json'),
        listen: { host: ip, port: 8443 },
        tls: { ca: pki.ca.cert, cert: pki.core.cert, key: pki.core.key },
        database: {},
      }),
    );
    const process = coreHost.node('dist/cli/index.js', ['core', '--config', config]);
    await process.waitForLine((l) => l.includes('core listening'), 60000);
    return {
      world,
      inet,
      broker,
      core: { host: coreHost, ip, port: 8443, process },
      pki,
      close: () => world.close(),
    };
  } catch (err) {
    await world.close();
    throw err;
  }
}
