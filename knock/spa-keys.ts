// SPA keys in fwknop's own text form, so that one `fwknop --key-gen` output serves the fwknop
// client, fwknopd's access.conf and nonstop alike.
import { randomBytes } from 'node:crypto';
import { errors } from '../lib/errors.js';

export interface SpaKey {
  /** The client's name in the guard config. */
  readonly name: string;
  /** Rijndael key: the key-derivation input, not the AES key itself (see spa.ts). */
  readonly encryptionKey: Buffer;
  /** HMAC-SHA256 key. */
  readonly hmacKey: Buffer;
}

// fwknop copies the Rijndael key into a 32-byte buffer and an HMAC key into a 128-byte one
// (RIJNDAEL_MAX_KEYSIZE, MAX_DIGEST_BLOCK_LEN); --key-gen makes 32 and 64 bytes. The lower
// bounds are ours: shorter keys are passphrases, not keys.
export const SPA_ENCRYPTION_KEY_BYTES = { min: 16, max: 32, generated: 32 } as const;
export const SPA_HMAC_KEY_BYTES = { min: 32, max: 128, generated: 64 } as const;

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const FIELDS = { KEY_BASE64: 'encryptionKey', HMAC_KEY_BASE64: 'hmacKey' } as const;
type FieldName = keyof typeof FIELDS;

/**
 * Reads what `fwknop --key-gen` prints (`KEY_BASE64: …` and `HMAC_KEY_BASE64: …`), or the same
 * two lines as access.conf spells them (`KEY_BASE64    …`). Blank lines and `#` comments are
 * skipped; anything else is an error naming the line.
 */
export function parseSpaKeyFile(text: string, name: string): SpaKey {
  const found: Partial<Record<FieldName, Buffer>> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Z0-9_]+)(?:\s*:\s*|\s+)(\S*)$/.exec(line);
    const field = m?.[1];
    if (m === null || (field !== 'KEY_BASE64' && field !== 'HMAC_KEY_BASE64')) {
      throw keyError(name, `line ${i + 1}: expected "KEY_BASE64: <base64>" or "HMAC_KEY_BASE64: <base64>"`);
    }
    if (found[field] !== undefined) throw keyError(name, `line ${i + 1}: ${field} given twice`);
    found[field] = decodeKey(name, field, m[2]!, i + 1);
  }
  const missing = (Object.keys(FIELDS) as FieldName[]).filter((f) => found[f] === undefined);
  if (missing.length > 0) throw keyError(name, `missing ${missing.join(' and ')}`);
  return { name, encryptionKey: found.KEY_BASE64!, hmacKey: found.HMAC_KEY_BASE64! };
}

function decodeKey(name: string, field: FieldName, value: string, line: number): Buffer {
  if (value === '') throw keyError(name, `line ${line}: ${field} has no value`);
  if (!BASE64.test(value) || value.length % 4 !== 0) {
    throw keyError(name, `line ${line}: ${field} is not base64 (A-Z a-z 0-9 + /, padded with =)`);
  }
  const key = Buffer.from(value, 'base64');
  if (key.toString('base64') !== value) {
    throw keyError(name, `line ${line}: ${field} is not canonical base64`);
  }
  const bounds = field === 'KEY_BASE64' ? SPA_ENCRYPTION_KEY_BYTES : SPA_HMAC_KEY_BYTES;
  if (key.length < bounds.min || key.length > bounds.max) {
    throw keyError(
      name,
      `line ${line}: ${field} is ${key.length} bytes; expected ${bounds.min} to ${bounds.max} (fwknop --key-gen makes ${bounds.generated})`,
    );
  }
  return key;
}

function keyError(name: string, detail: string) {
  return errors.SPA_KEY_INVALID(`SPA key for "${name}": ${detail}`, { client: name });
}

/** Fresh keys of the sizes `fwknop --key-gen` makes. */
export function generateSpaKeys(name: string): SpaKey {
  return {
    name,
    encryptionKey: randomBytes(SPA_ENCRYPTION_KEY_BYTES.generated),
    hmacKey: randomBytes(SPA_HMAC_KEY_BYTES.generated),
  };
}

/** The two lines `fwknop --key-gen` prints, newline-terminated as `fwknop -K FILE` writes them. */
export function formatSpaKeyFile(key: SpaKey): string {
  return `KEY_BASE64: ${key.encryptionKey.toString('base64')}\nHMAC_KEY_BASE64: ${key.hmacKey.toString('base64')}\n`;
}
