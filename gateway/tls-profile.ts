// The gateway's public TLS: Mozilla's server-side TLS profiles ("intermediate": TLS 1.2 with
// ECDHE and AEAD suites only, and TLS 1.3; "modern": TLS 1.3 only), and the
// Strict-Transport-Security value. The suites are named, not filtered from OpenSSL's default,
// so an OpenSSL upgrade cannot widen them.
import { constants } from 'node:crypto';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { GatewayConfig } from '../config/schemas/gateway.js';
import { errors } from '../lib/errors.js';

type HttpsConfig = NonNullable<GatewayConfig['https']>;

/** TLS 1.2: forward secret (ECDHE) and AEAD (GCM, ChaCha20-Poly1305); no CBC, SHA-1, CCM, ARIA. */
export const TLS12_SUITES: readonly string[] = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
];
/** TLS 1.3: every suite is AEAD and forward secret; CCM ones are left out as Mozilla does. */
export const TLS13_SUITES: readonly string[] = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
];
export const TLS_GROUPS = 'X25519:prime256v1:secp384r1';

/** Options for https.createServer / setSecureContext under the configured profile. */
export function tlsProfileOptions(profile: HttpsConfig['profile']): TlsOptions & SecureContextOptions {
  const suites = profile === 'modern' ? TLS13_SUITES : [...TLS13_SUITES, ...TLS12_SUITES];
  return {
    minVersion: profile === 'modern' ? 'TLSv1.3' : 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers: suites.join(':'),
    ecdhCurve: TLS_GROUPS,
    // Every suite offered is strong, so the client picks the one its hardware does fastest
    // (ChaCha20 on phones without AES instructions), as Mozilla's profiles advise.
    honorCipherOrder: false,
    // No session tickets: their key lives as long as the process and would undo forward
    // secrecy for every session it sealed (Mozilla: session tickets off).
    secureOptions: constants.SSL_OP_NO_TICKET,
  };
}

/** The Strict-Transport-Security value; refuses a `preload` that the preload list would refuse. */
export function hstsHeader(hsts: HttpsConfig['hsts']): string {
  if (hsts.preload && (!hsts.includeSubDomains || hsts.maxAge < 31536000)) {
    throw errors.CONFIG_INVALID(
      'gateway: field "https.hsts.preload" needs "includeSubDomains": true and "maxAge" of at least 31536000 (the preload list refuses anything less)',
    );
  }
  return [
    `max-age=${hsts.maxAge}`,
    ...(hsts.includeSubDomains ? ['includeSubDomains'] : []),
    ...(hsts.preload ? ['preload'] : []),
  ].join('; ');
}
