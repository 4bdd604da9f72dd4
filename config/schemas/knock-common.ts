// Schema pieces shared by the knock guard's config and the knock CLI's profiles, so that both
// sides of a rotating sequence read the same parameters with the same defaults.

/** One knock step as knockd writes it: `7000`, `7000:tcp` or `8000:udp`. */
export const knockStepSchema = { type: 'string', pattern: '^[0-9]{1,5}(:(tcp|udp))?$' } as const;

export const staticSequenceSchema = {
  type: 'array',
  minItems: 1,
  maxItems: 32,
  items: knockStepSchema,
} as const;

/** A 32-byte secret, base64url without padding (what `nonstop knock-secret` prints). */
export const knockSecretSchema = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } as const;

/**
 * An SPA key as fwknop writes it (KEY_BASE64, HMAC_KEY_BASE64): standard base64 with padding.
 * knock/spa.ts checks the decoded length (at most 32 bytes for Rijndael, 128 for HMAC).
 */
export const spaKeySchema = { type: 'string', pattern: '^[A-Za-z0-9+/]{4,172}={0,2}$' } as const;

/** Parameters of rotating sequences; guard and client must agree on them. */
export const rotationSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    portMin: { type: 'integer', minimum: 1, maximum: 65535, default: 20000 },
    portMax: { type: 'integer', minimum: 1, maximum: 65535, default: 29999 },
    length: { type: 'integer', minimum: 2, maximum: 16, default: 4 },
    stepSeconds: { type: 'integer', minimum: 5, maximum: 3600, default: 30 },
  },
  default: {},
} as const;

export interface RotationParams {
  readonly portMin: number;
  readonly portMax: number;
  readonly length: number;
  readonly stepSeconds: number;
}
