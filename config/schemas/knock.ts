// Schema of a knock profiles file (`"kind": "knock"`), read by `nonstop knock --profile NAME`.
import { ID_PATTERN, schemaKeySchema } from './common.js';
import {
  knockSecretSchema,
  rotationSchema,
  spaKeySchema,
  staticSequenceSchema,
  type RotationParams,
} from './knock-common.js';

export const knockSchema = {
  $id: 'nonstop/knock',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'profiles'],
  properties: {
    $schema: schemaKeySchema,
    kind: { const: 'knock' },
    profiles: {
      type: 'object',
      maxProperties: 1000,
      propertyNames: { pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          /** Default target when the command line names none. */
          host: { type: 'string', minLength: 1, maxLength: 253 },
          sshPort: { type: 'integer', minimum: 1, maximum: 65535, default: 22 },
          sshUser: { type: 'string', pattern: '^[a-z_][a-z0-9_.-]{0,31}$' },
          delayMs: { type: 'integer', minimum: 0, maximum: 10000, default: 30 },
          sequence: staticSequenceSchema,
          /** Single-packet authorization (fwknop's format) instead of a sequence. */
          spa: {
            type: 'object',
            additionalProperties: false,
            required: ['key', 'hmacKey'],
            properties: {
              port: { type: 'integer', minimum: 1, maximum: 65535, default: 62201 },
              /** fwknop's KEY_BASE64 and HMAC_KEY_BASE64 (`nonstop spa-keygen`, `fwknop --key-gen`). */
              key: spaKeySchema,
              hmacKey: spaKeySchema,
              /** The address the packet asks to open; default 0.0.0.0, "the address it came from". */
              allow: { type: 'string', minLength: 2, maxLength: 45 },
            },
          },
          rotating: {
            type: 'object',
            additionalProperties: false,
            required: ['gateway', 'client', 'secret'],
            properties: {
              ...rotationSchema.properties,
              gateway: { type: 'string', pattern: ID_PATTERN },
              client: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,62}$' },
              secret: knockSecretSchema,
            },
          },
        },
      },
    },
  },
} as const;

export interface KnockProfile {
  readonly host?: string;
  readonly sshPort: number;
  readonly sshUser?: string;
  readonly delayMs: number;
  readonly sequence?: readonly string[];
  readonly spa?: SpaProfile;
  readonly rotating?: RotationParams & {
    readonly gateway: string;
    readonly client: string;
    readonly secret: string;
  };
}

export interface SpaProfile {
  readonly port: number;
  readonly key: string;
  readonly hmacKey: string;
  readonly allow?: string;
}

export interface KnockConfig {
  readonly kind: 'knock';
  readonly profiles: Readonly<Record<string, KnockProfile>>;
}
