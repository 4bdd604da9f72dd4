// The step before each SSH connection to a gateway: a knock that opens the gateway's filtered
// SSH port to this broker's address for a short window. Built per gateway from its `ssh.knock`
// config: a static sequence, or a rotating one computed from this broker's secret for that
// gateway and the current time step (knock/client.ts, the same code as `nonstop knock`).
import { readFileSync } from 'node:fs';
import type { GatewayKnock } from '../config/schemas/broker.js';
import { errors } from '../lib/errors.js';
import { profileSequence, resolveGateway, sendKnock } from '../knock/client.js';
import type { KnockProfile } from '../config/knock.js';

export interface Knocker {
  /**
   * Resolves once the knock is sent, with the address it went to (the one to connect to: a name
   * with both A and AAAA records must not be knocked over one family and dialled over the
   * other); rejects if it could not be sent.
   */
  knock(gatewayHost: string): Promise<string>;
}

/** For gateways whose SSH port is open to brokers without a knock. */
export const noKnock: Knocker = {
  knock: (gatewayHost) => Promise.resolve(gatewayHost),
};

/** The knocker for one gateway; the secret is read once, here, so a missing file fails at start. */
export function knockerFor(gatewayId: string, knock: GatewayKnock | undefined): Knocker {
  if (knock === undefined || (knock.sequence === undefined && knock.rotating === undefined)) return noKnock;
  const profile: KnockProfile = {
    sshPort: 22,
    delayMs: knock.delayMs,
    ...(knock.sequence === undefined ? {} : { sequence: knock.sequence }),
    ...(knock.rotating === undefined
      ? {}
      : {
          rotating: {
            portMin: knock.rotating.portMin,
            portMax: knock.rotating.portMax,
            length: knock.rotating.length,
            stepSeconds: knock.rotating.stepSeconds,
            gateway: gatewayId,
            client: knock.rotating.client,
            secret: readSecret(knock.rotating.secretFile, gatewayId),
          },
        }),
  };
  return {
    async knock(gatewayHost) {
      const address = await resolveGateway(gatewayHost);
      await sendKnock(address, profileSequence(profile), { delayMs: profile.delayMs });
      return address;
    },
  };
}

function readSecret(file: string, gatewayId: string): string {
  let secret: string;
  try {
    secret = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw errors.CONFIG_UNREADABLE(
      `gateways[${gatewayId}].ssh.knock.rotating.secretFile: cannot read ${file}`,
      undefined,
      {
        cause: err,
      },
    );
  }
  if (!/^[A-Za-z0-9_-]{43}$/.test(secret)) {
    throw errors.CONFIG_INVALID(
      `${file}: not a knock secret (expected 43 base64url characters, as nonstop knock-secret prints)`,
    );
  }
  return secret;
}
