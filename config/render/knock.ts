// Knock profiles (`"kind": "knock"`, read by `nonstop knock --profile NAME`): a broker's own, so
// that an operator on the broker can knock a gateway as that broker does, and the test world's
// admin profiles. `nonstop render knock` (Ansible) and the world build them here.
import type { RotationParams } from '../schemas/knock-common.js';
import { checkedDocument } from './document.js';

export interface KnockProfilesInput {
  /** Who knocks: its name in each guard's rotating.clients. */
  readonly client: string;
  readonly rotation?: Partial<RotationParams>;
  readonly gateways: readonly {
    readonly id: string;
    readonly address: string;
    readonly sshPort?: number;
    /** This client's secret for that gateway. */
    readonly secret: string;
    /** The profile's name; default the gateway's id. */
    readonly profile?: string;
  }[];
}

export function knockProfilesDocument(input: KnockProfilesInput) {
  return checkedDocument('knock', `knock.json of ${input.client}`, {
    kind: 'knock',
    profiles: Object.fromEntries(
      input.gateways.map((gw) => [
        gw.profile ?? gw.id,
        {
          host: gw.address,
          sshPort: gw.sshPort ?? 22,
          rotating: { ...input.rotation, gateway: gw.id, client: input.client, secret: gw.secret },
        },
      ]),
    ),
  } as const);
}

export type KnockProfilesDocument = ReturnType<typeof knockProfilesDocument>;
