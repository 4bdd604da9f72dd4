// The step before each SSH connection to a gateway: a knock that opens the gateway's filtered
// SSH port to this broker's address for a short window. Built per gateway from its `ssh.knock`
// config: a static sequence, or a rotating one computed from this broker's secret for that
// gateway and the current time step (knock/client.ts, the same code as `nonstop knock`).
//
// A rotating knock from a host whose clock is more than one step (default 30 s) off the
// gateway's opens nothing, and looks from here like any filtered port. The tunnel already backs
// off between attempts (exponential, capped); the knocker adds the diagnosis: after
// UNANSWERED_HINT_AFTER knocks in a row that SSH did not answer, one warning that names the
// clock, and no other until SSH has answered again.
import { readFileSync } from 'node:fs';
import type { GatewayKnock } from '../config/schemas/broker.js';
import { errors } from '../lib/errors.js';
import { profileSequence, resolveGateway, sendKnock, sendSpa } from '../knock/client.js';
import { parseSpaKeyFile, type SpaKey } from '../knock/spa.js';
import type { KnockProfile } from '../config/knock.js';
import type { Logger } from '../lib/log.js';

/** Knocks in a row that SSH did not answer before the knocker suggests the clock. */
export const UNANSWERED_HINT_AFTER = 3;

export interface Knocker {
  /**
   * Resolves once the knock is sent, with the address it went to (the one to connect to: a name
   * with both A and AAAA records must not be knocked over one family and dialled over the
   * other); rejects if it could not be sent.
   */
  knock(gatewayHost: string): Promise<string>;
  /**
   * Told after each knock whether SSH then answered at all (a TCP connection: the knock opened
   * the port) or not (the connection attempt timed out: the port stayed filtered).
   */
  sshAnswered?(answered: boolean): void;
}

/** For gateways whose SSH port is open to brokers without a knock. */
export const noKnock: Knocker = {
  knock: (gatewayHost) => Promise.resolve(gatewayHost),
};

/**
 * The knocker for one gateway. The secret (or SPA key file) is read here, so a missing file
 * fails at start, and again before each knock, so a rotated one (README, "Rotating
 * credentials") is used from the next knock on without a restart; a file that became
 * unreadable or invalid keeps the last good one.
 */
export function knockerFor(
  gatewayId: string,
  knock: GatewayKnock | undefined,
  log?: Logger,
  sshPort = 22,
): Knocker {
  if (knock?.spa !== undefined) return spaKnocker(gatewayId, knock.spa, sshPort, log);
  if (knock === undefined || (knock.sequence === undefined && knock.rotating === undefined)) return noKnock;
  let profile: KnockProfile = {
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
  let unanswered = 0;
  return {
    async knock(gatewayHost) {
      const address = await resolveGateway(gatewayHost);
      if (knock.rotating !== undefined && profile.rotating !== undefined) {
        const secret = rereadSecret(knock.rotating.secretFile, gatewayId, profile.rotating.secret, log);
        profile = { ...profile, rotating: { ...profile.rotating, secret } };
      }
      await sendKnock(address, profileSequence(profile), { delayMs: profile.delayMs });
      return address;
    },
    sshAnswered(answered) {
      if (answered) {
        unanswered = 0;
        return;
      }
      unanswered += 1;
      if (unanswered !== UNANSWERED_HINT_AFTER || log === undefined) return;
      const rotating = profile.rotating;
      if (rotating === undefined) {
        log.warn(
          { event: 'knock-unanswered', gatewayId, knocks: unanswered },
          `SSH on gateway ${gatewayId} stayed filtered after ${unanswered} knocks in a row: ` +
            "check the static sequence against the gateway's guard; retrying with backoff",
        );
        return;
      }
      log.warn(
        {
          event: 'knock-unanswered',
          gatewayId,
          knocks: unanswered,
          client: rotating.client,
          toleranceSeconds: rotating.stepSeconds,
        },
        `SSH on gateway ${gatewayId} stayed filtered after ${unanswered} rotating knocks in a row: ` +
          `if this host's clock is more than ${rotating.stepSeconds} s off the gateway's (its guard logs ` +
          'knock-clock-skew), fix the clock (NTP); otherwise check the secret. Retrying with backoff',
      );
    },
  };
}

/** One SPA packet before each connection (a fresh one each time: the guard refuses a replay). */
function spaKnocker(
  gatewayId: string,
  spa: NonNullable<GatewayKnock['spa']>,
  sshPort: number,
  log: Logger | undefined,
): Knocker {
  let key = readSpaKeys(spa.keyFile, gatewayId);
  let unanswered = 0;
  return {
    async knock(gatewayHost) {
      try {
        key = readSpaKeys(spa.keyFile, gatewayId);
      } catch (err) {
        log?.warn(
          { event: 'knock-secret-unreadable', gatewayId, err: (err as Error).message },
          `cannot read the SPA keys for ${gatewayId} again; knocking with the ones read before`,
        );
      }
      const address = await resolveGateway(gatewayHost);
      await sendSpa(address, { port: spa.port, sshPort, key });
      return address;
    },
    sshAnswered(answered) {
      unanswered = answered ? 0 : unanswered + 1;
      if (unanswered !== UNANSWERED_HINT_AFTER || log === undefined) return;
      log.warn(
        { event: 'knock-unanswered', gatewayId, knocks: unanswered, spaPort: spa.port },
        `SSH on gateway ${gatewayId} stayed filtered after ${unanswered} SPA packets in a row: check this ` +
          "broker's keys against the gateway guard's spa.clients, and the clocks (the guard logs why it " +
          'refused an authentic packet: stale or ahead means fix the clock with NTP). Retrying with backoff',
      );
    },
  };
}

function readSpaKeys(file: string, gatewayId: string): SpaKey {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw errors.CONFIG_UNREADABLE(
      `gateways[${gatewayId}].ssh.knock.spa.keyFile: cannot read ${file}`,
      undefined,
      {
        cause: err,
      },
    );
  }
  return parseSpaKeyFile(text, file);
}

/** The secret in the file now; the last good one (with a warning) if it is unreadable now. */
function rereadSecret(file: string, gatewayId: string, last: string, log: Logger | undefined): string {
  try {
    return readSecret(file, gatewayId);
  } catch (err) {
    log?.warn(
      { event: 'knock-secret-unreadable', gatewayId, err: (err as Error).message },
      `cannot read the knock secret for ${gatewayId} again; knocking with the one read before`,
    );
    return last;
  }
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
