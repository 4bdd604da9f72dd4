// Schemas of `nonstop render`'s input documents: what Ansible knows about a host (from the
// inventory), as JSON. The renderers check the rest (one word per address, no newlines).
import type { EgressRule } from '../../core/firewall.js';
import type { HostRole, TunnelBroker } from '../../gateway/sshd-config.js';
import { ID_PATTERN, pathSchema } from './common.js';

const portSchema = { type: 'integer', minimum: 1, maximum: 65535 } as const;
const NAME_PATTERN = '^[a-z_][a-z0-9_-]{0,31}$';
const addressSchema = { type: 'string', minLength: 2, maxLength: 64, pattern: '^[0-9A-Fa-f.:/]+$' } as const;

export const sshdInputSchema = {
  $id: 'nonstop/render-sshd',
  type: 'object',
  additionalProperties: false,
  required: ['role', 'port', 'hostKeys', 'allowGroups'],
  properties: {
    role: { enum: ['gateway', 'broker', 'core'] },
    port: portSchema,
    /** Empty: every address. */
    listenAddresses: { type: 'array', maxItems: 16, uniqueItems: true, items: addressSchema, default: [] },
    hostKeys: { type: 'array', minItems: 1, maxItems: 4, items: pathSchema },
    /** Deployed hosts always name the groups sshd admits. */
    allowGroups: {
      type: 'array',
      minItems: 1,
      maxItems: 8,
      uniqueItems: true,
      items: { type: 'string', pattern: NAME_PATTERN },
    },
    authorizedKeysFile: pathSchema,
    tunnelUser: { type: 'string', pattern: NAME_PATTERN },
    tunnelAuthorizedKeysFile: pathSchema,
    brokers: {
      type: 'array',
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'publicKey', 'port'],
        properties: {
          id: { type: 'string', pattern: ID_PATTERN },
          publicKey: { type: 'string', minLength: 16, maxLength: 16384 },
          port: portSchema,
        },
      },
    },
    jumpTargets: {
      type: 'array',
      maxItems: 16,
      uniqueItems: true,
      items: { type: 'string', minLength: 3, maxLength: 300 },
    },
  },
} as const;

export interface SshdInput {
  readonly role: HostRole;
  readonly port: number;
  readonly listenAddresses: readonly string[];
  readonly hostKeys: readonly string[];
  readonly allowGroups: readonly string[];
  readonly authorizedKeysFile?: string;
  readonly tunnelUser?: string;
  readonly tunnelAuthorizedKeysFile?: string;
  readonly brokers?: readonly TunnelBroker[];
  readonly jumpTargets?: readonly string[];
}

export const nftablesInputSchema = {
  $id: 'nonstop/render-nftables',
  type: 'object',
  additionalProperties: false,
  required: ['role', 'addresses', 'brokers'],
  properties: {
    /** Gateways and brokers load the guard's table (`nonstop guard --print-ruleset`). */
    role: { const: 'core' },
    addresses: { type: 'array', minItems: 1, maxItems: 8, uniqueItems: true, items: addressSchema },
    brokers: { type: 'array', minItems: 1, maxItems: 256, uniqueItems: true, items: addressSchema },
    listenPort: { ...portSchema, default: 9443 },
    sshPort: { ...portSchema, default: 22 },
    icmpEcho: { type: 'boolean', default: true },
    egress: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['protocol', 'ports'],
        properties: {
          protocol: { enum: ['tcp', 'udp'] },
          ports: { type: 'array', minItems: 1, maxItems: 16, uniqueItems: true, items: portSchema },
          /** Absent: any destination. */
          to: { type: 'array', minItems: 1, maxItems: 64, uniqueItems: true, items: addressSchema },
        },
      },
      default: [],
    },
  },
} as const;

export interface NftablesInput {
  readonly role: 'core';
  readonly addresses: readonly string[];
  readonly brokers: readonly string[];
  readonly listenPort: number;
  readonly sshPort: number;
  readonly icmpEcho: boolean;
  readonly egress: readonly EgressRule[];
}
