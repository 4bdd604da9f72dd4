// Single Packet Authorization in fwknop's wire format (fwknop 2.x, FKO protocol 3.0.0), the one
// variant nonstop speaks: Rijndael (AES-256-CBC, OpenSSL-salted key derivation), HMAC-SHA256,
// SHA-256 inner digest, access requests with or without a client timeout.
//
// Wire (one UDP datagram, base64 without '='):
//   B64(ct).slice(10) ‖ B64(HMAC-SHA256(hmacKey, B64(ct)))          (43 characters of HMAC)
//   ct        = "Salted__" ‖ salt(8) ‖ AES-256-CBC(key, iv, PKCS#7(plaintext))
//   key ‖ iv  = MD5(k‖s) ‖ MD5(MD5(k‖s)‖k‖s) ‖ MD5(…‖k‖s)             (EVP_BytesToKey, MD5, 1 round)
//   plaintext = rand(16 digits):B64(user):unix-seconds:3.0.0:type:B64("addr,tcp/22,…")[:timeout]:B64(SHA256(…))
// The first ten characters of B64(ct) always read "U2FsdGVkX1" ("Salted_"), so fwknop leaves them
// off the wire; the HMAC covers them, so the receiver puts them back before checking it.
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  randomInt,
} from 'node:crypto';
import { timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { errors } from '../lib/errors.js';
import type { SpaKey } from './spa-keys.js';

export type { SpaKey } from './spa-keys.js';
export { formatSpaKeyFile, generateSpaKeys, parseSpaKeyFile } from './spa-keys.js';

export const SPA_ACCESS_MSG = 1;
export const SPA_CLIENT_TIMEOUT_ACCESS_MSG = 3;
/** fwknopd's MAX_SPA_PACKET_AGE default. */
export const SPA_DEFAULT_MAX_AGE_SECONDS = 120;
/** How far a client's clock may run ahead; fwknopd is symmetric, so the same. */
export const SPA_DEFAULT_SKEW_SECONDS = 120;

export interface SpaAccess {
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
}

export interface SpaRequest {
  readonly username: string;
  /** IPv4 or IPv6 text; 0.0.0.0 asks for the packet's source address (fwknop -s). */
  readonly accessAddress: string;
  /** `tcp/22` or `tcp/22,udp/53`, as fwknop -A takes it, or the parsed list. */
  readonly access: string | readonly SpaAccess[];
  /** Present: a CLIENT_TIMEOUT_ACCESS message (fwknop --fw-timeout). */
  readonly clientTimeoutSeconds?: number;
}

export interface SpaMessage {
  readonly randomValue: string;
  readonly username: string;
  /** Client's clock, unix seconds. */
  readonly timestamp: number;
  readonly version: string;
  readonly messageType: typeof SPA_ACCESS_MSG | typeof SPA_CLIENT_TIMEOUT_ACCESS_MSG;
  readonly accessAddress: string;
  readonly access: readonly SpaAccess[];
  readonly clientTimeoutSeconds?: number;
}

export type SpaRefusal =
  | 'size' // not a length an SPA packet can have
  | 'encoding' // not base64
  | 'hmac' // no client's HMAC key authenticates it
  | 'decrypt' // authenticated, but the encryption key does not open it
  | 'format' // opened, but the fields are not an access request
  | 'digest' // the inner SHA-256 digest does not match
  | 'unsupported' // a valid fwknop message nonstop does not act on: command, NAT, other digests
  | 'age'; // timestamp outside the accepted window

export type SpaDecodeResult =
  | {
      readonly ok: true;
      readonly client: string;
      readonly message: SpaMessage;
      readonly replayDigest: string;
    }
  | {
      readonly ok: false;
      readonly reason: SpaRefusal;
      readonly detail: string;
      /** Set once a client's HMAC key authenticated the packet: its sender holds that key. */
      readonly client?: string;
    };

export interface SpaDecodeOptions {
  readonly nowMs?: number;
  /** Oldest accepted timestamp, seconds before now. */
  readonly maxAgeSeconds?: number;
  /** Newest accepted timestamp, seconds after now. */
  readonly skewSeconds?: number;
}

const SALT_PREFIX_B64 = 'U2FsdGVkX1'; // B64_RIJNDAEL_SALT
const SALTED = Buffer.from('Salted__');
const VERSION = '3.0.0'; // FKO_PROTOCOL_VERSION
const HMAC_B64_LEN = 43; // SHA256_B64_LEN
const DIGEST_B64_LEN = 43;
const BLOCK = 16;
// fwknopd takes a ciphertext (with the prefix, without the HMAC) of 400 characters or more for
// GnuPG, so a Rijndael one is at most 399: 299 bytes, i.e. the header and 17 blocks.
const MAX_CT_BYTES = 16 + 17 * BLOCK;
const MIN_CT_BYTES = 16 + 2 * BLOCK; // the shortest real plaintext is over 80 bytes
const MAX_PLAINTEXT = 17 * BLOCK - 1;
const MAX_USERNAME_B64 = 64; // MAX_SPA_USERNAME_SIZE
const MAX_MESSAGE_B64 = 256; // MAX_SPA_MESSAGE_SIZE
const OTHER_TYPES: Record<string, string> = {
  '0': 'a command message (fwknop -C)',
  '2': 'a NAT access message (fwknop -N)',
  '4': 'a NAT access message with a client timeout',
  '5': 'a local NAT access message (--nat-local)',
  '6': 'a local NAT access message with a client timeout',
};
const OTHER_DIGESTS: Record<number, string> = { 22: 'MD5', 27: 'SHA-1', 64: 'SHA-384', 86: 'SHA-512' };
const B64_CHAR = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')
  B64_CHAR[c.charCodeAt(0)] = 1;

function b64(data: Buffer | string): string {
  const s = (typeof data === 'string' ? Buffer.from(data, 'latin1') : data).toString('base64');
  return s.replace(/=+$/, '');
}

function deriveKeyIv(key: Buffer, salt: Buffer): { key: Buffer; iv: Buffer } {
  const d1 = createHash('md5').update(key).update(salt).digest();
  const d2 = createHash('md5').update(d1).update(key).update(salt).digest();
  const d3 = createHash('md5').update(d2).update(key).update(salt).digest();
  return { key: Buffer.concat([d1, d2]), iv: d3 };
}

function hmac(key: SpaKey, ctB64WithoutPrefix: Buffer): Buffer {
  return createHmac('sha256', key.hmacKey).update(SALT_PREFIX_B64).update(ctB64WithoutPrefix).digest();
}

/** Encrypts and authenticates a finished plaintext; `encodeSpa` is the usual entry. */
export function sealSpaPlaintext(plaintext: string, key: SpaKey, salt: Buffer = randomBytes(8)): Buffer {
  if (plaintext.length > MAX_PLAINTEXT) {
    throw errors.SPA_REQUEST_INVALID(
      `SPA plaintext is ${plaintext.length} bytes; fwknopd takes at most ${MAX_PLAINTEXT} (fewer or shorter access entries)`,
    );
  }
  const { key: aesKey, iv } = deriveKeyIv(key.encryptionKey, salt);
  const cipher = createCipheriv('aes-256-cbc', aesKey, iv);
  const ct = Buffer.concat([SALTED, salt, cipher.update(plaintext, 'latin1'), cipher.final()]);
  const body = Buffer.from(b64(ct).slice(SALT_PREFIX_B64.length), 'latin1');
  return Buffer.concat([body, Buffer.from(b64(hmac(key, body)), 'latin1')]);
}

/** The UDP payload fwknop's client would send for this access request. */
export function encodeSpa(fields: SpaRequest, key: SpaKey, nowMs: number = Date.now()): Buffer {
  const username = fields.username;
  if (!validUsername(username) || b64(username).length > MAX_USERNAME_B64) {
    throw errors.SPA_REQUEST_INVALID(
      `SPA username ${JSON.stringify(username)}: 1 to 48 printable ASCII characters, none of " / \\ [ ] : ; | = , + * ? < >`,
    );
  }
  if (!validAddress(fields.accessAddress)) {
    throw errors.SPA_REQUEST_INVALID(
      `SPA access address ${JSON.stringify(fields.accessAddress)}: not an IPv4 or IPv6 address (no zone)`,
    );
  }
  const access = typeof fields.access === 'string' ? parseAccessList(fields.access) : fields.access;
  if (access === undefined || access.length === 0 || !access.every(validAccess)) {
    throw errors.SPA_REQUEST_INVALID(
      `SPA access ${JSON.stringify(fields.access)}: expected tcp/PORT or udp/PORT entries, comma-separated, ports 1-65535`,
    );
  }
  const timeout = fields.clientTimeoutSeconds;
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout >= 1 && timeout <= 65535)) {
    throw errors.SPA_REQUEST_INVALID(`SPA client timeout ${timeout}: expected whole seconds, 1 to 65535`);
  }
  const message = `${fields.accessAddress},${access.map((a) => `${a.protocol}/${a.port}`).join(',')}`;
  if (b64(message).length > MAX_MESSAGE_B64) {
    throw errors.SPA_REQUEST_INVALID(`SPA access message "${message}" is too long for fwknop`);
  }
  let rand = '';
  while (rand.length < 16) rand += String(randomInt(100_000_000)).padStart(8, '0');
  const type = timeout === undefined ? SPA_ACCESS_MSG : SPA_CLIENT_TIMEOUT_ACCESS_MSG;
  const ts = Math.floor(nowMs / 1000);
  const encoded =
    `${rand}:${b64(username)}:${ts}:${VERSION}:${type}:${b64(message)}` +
    (timeout === undefined ? '' : `:${timeout}`);
  return sealSpaPlaintext(`${encoded}:${b64(createHash('sha256').update(encoded).digest())}`, key);
}

/** `client`: the key whose HMAC authenticated the packet, when it got that far. */
function refuse(reason: SpaRefusal, detail: string, client?: string): SpaDecodeResult {
  return client === undefined ? { ok: false, reason, detail } : { ok: false, reason, detail, client };
}

/**
 * Authenticates and parses one datagram. Cheap checks come first (length, base64 alphabet), then
 * the HMAC under each client's key (timing-safe), and only a packet some key authenticated is
 * decrypted and parsed. Never throws: any input gives a result.
 *
 * `replayDigest` is SHA-256 over the decrypted plaintext, not over the datagram. Without the keys
 * an attacker can change only the framing (the HMAC's base64 spelling, the "U2FsdGVkX1" prefix
 * fwknop strips, trailing bytes) and this decoder refuses all of those today; a plaintext digest
 * keeps replays recognised even if the framing rules loosen later, and also catches the same
 * message sealed twice under different salts (same random value, same timestamp). The plaintext
 * includes the 16-digit random value and the timestamp, so two genuine requests never share it.
 * Only authenticated packets are decrypted, so computing it costs nothing an attacker controls.
 */
export function decodeSpa(
  payload: Buffer,
  keys: readonly SpaKey[],
  options: SpaDecodeOptions = {},
): SpaDecodeResult {
  try {
    return decodeUnsafe(payload, keys, options);
  } catch (err) {
    // Nothing below should throw on any input; if it does, the packet is still refused.
    return refuse('format', `unexpected: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function decodeUnsafe(payload: Buffer, keys: readonly SpaKey[], options: SpaDecodeOptions): SpaDecodeResult {
  const bodyLen = payload.length - HMAC_B64_LEN;
  const ctChars = bodyLen + SALT_PREFIX_B64.length;
  const ctBytes = Math.floor((ctChars * 3) / 4);
  if (bodyLen <= 0 || ctChars % 4 === 1 || ctBytes % BLOCK !== 0) {
    return refuse('size', `${payload.length} bytes is not the length of an SPA packet`);
  }
  if (ctBytes < MIN_CT_BYTES || ctBytes > MAX_CT_BYTES) {
    return refuse('size', `${payload.length} bytes is outside the SPA packet sizes`);
  }
  for (let i = 0; i < payload.length; i++) {
    if (B64_CHAR[payload[i]!] !== 1) return refuse('encoding', `byte ${i} is not a base64 character`);
  }
  const body = payload.subarray(0, bodyLen);
  // fwknopd compares the HMAC as text. Decoding it once and comparing bytes is cheaper per key,
  // and as strict provided a second spelling of the same bytes (base64's unused low bits in the
  // last character) is refused first.
  const tagText = payload.subarray(bodyLen).toString('latin1');
  const tag = Buffer.from(tagText, 'base64');
  if (b64(tag) !== tagText) return refuse('hmac', 'the HMAC is not in canonical base64');
  const key = keys.find((k) => timingSafeEqual(hmac(k, body), tag));
  if (key === undefined)
    return refuse('hmac', `no client's HMAC key authenticates it (${keys.length} tried)`);

  const ct = Buffer.from(SALT_PREFIX_B64 + body.toString('latin1'), 'base64');
  if (ct.length !== ctBytes || !ct.subarray(0, 8).equals(SALTED)) {
    return refuse('decrypt', `the ciphertext does not start with the OpenSSL salt header`, key.name);
  }
  const { key: aesKey, iv } = deriveKeyIv(key.encryptionKey, ct.subarray(8, 16));
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-cbc', aesKey, iv);
    plain = Buffer.concat([decipher.update(ct.subarray(16)), decipher.final()]);
  } catch {
    return refuse('decrypt', `bad padding; the encryption key does not match the HMAC key`, key.name);
  }
  if (!/^[0-9]{16}:/.test(plain.subarray(0, 17).toString('latin1'))) {
    return refuse('decrypt', `no random value; the encryption key does not match the HMAC key`, key.name);
  }
  const replayDigest = createHash('sha256').update(plain).digest('hex');
  const parsed = parsePlaintext(plain);
  if (!('randomValue' in parsed)) return refuse(parsed.reason, parsed.detail, key.name);

  const nowS = Math.floor((options.nowMs ?? Date.now()) / 1000);
  const age = nowS - parsed.timestamp;
  const maxAge = options.maxAgeSeconds ?? SPA_DEFAULT_MAX_AGE_SECONDS;
  const skew = options.skewSeconds ?? SPA_DEFAULT_SKEW_SECONDS;
  if (age > maxAge || age < -skew) {
    return refuse(
      'age',
      `timestamp is ${Math.abs(age)} s in the ${age > 0 ? 'past' : 'future'} (accepted: ${maxAge} s old, ${skew} s ahead)`,
      key.name,
    );
  }
  return { ok: true, client: key.name, message: parsed, replayDigest };
}

type Parsed = SpaMessage | { readonly reason: SpaRefusal; readonly detail: string };

function parsePlaintext(plain: Buffer): Parsed {
  for (let i = 0; i < plain.length; i++) {
    const c = plain[i]!;
    if (c < 0x20 || c > 0x7e)
      return { reason: 'format', detail: `byte ${i} of the plaintext is not printable` };
  }
  const text = plain.toString('latin1');
  const cut = text.lastIndexOf(':');
  const digest = text.slice(cut + 1);
  const signed = text.slice(0, cut);
  if (digest.length !== DIGEST_B64_LEN) {
    const other = OTHER_DIGESTS[digest.length];
    return other === undefined
      ? { reason: 'format', detail: `a ${digest.length}-character digest field` }
      : { reason: 'unsupported', detail: `${other} digest; nonstop takes SHA-256 (fwknop -m sha256)` };
  }
  const expected = Buffer.from(b64(createHash('sha256').update(signed, 'latin1').digest()), 'latin1');
  if (!timingSafeEqual(expected, Buffer.from(digest, 'latin1'))) {
    return { reason: 'digest', detail: 'the SHA-256 digest does not match (SHA3-256 is not supported)' };
  }
  const f = signed.split(':');
  const typeField = f[4] ?? '';
  const other = OTHER_TYPES[typeField];
  if (other !== undefined)
    return { reason: 'unsupported', detail: `${other}; nonstop takes access requests` };
  if (typeField !== '1' && typeField !== '3') {
    return { reason: 'format', detail: `message type ${JSON.stringify(typeField.slice(0, 8))}` };
  }
  const messageType = typeField === '1' ? SPA_ACCESS_MSG : SPA_CLIENT_TIMEOUT_ACCESS_MSG;
  const want = messageType === SPA_ACCESS_MSG ? 6 : 7;
  if (f.length !== want) {
    return {
      reason: 'format',
      detail: `${f.length + 1} fields for message type ${typeField}; expected ${want + 1} (server_auth is not supported)`,
    };
  }
  const [randomValue, userB64, tsText, version, , msgB64, timeoutText] = f as [
    string,
    string,
    string,
    string,
    string,
    string,
    string | undefined,
  ];
  if (!/^[0-9]{16}$/.test(randomValue)) return { reason: 'format', detail: 'random value is not 16 digits' };
  const username = userB64.length <= MAX_USERNAME_B64 ? unb64(userB64) : undefined;
  if (username === undefined || !validUsername(username)) return { reason: 'format', detail: 'bad username' };
  if (!/^[0-9]{1,10}$/.test(tsText) || Number(tsText) > 0xffff_ffff) {
    return { reason: 'format', detail: 'timestamp is not unix seconds' };
  }
  if (!/^[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}$/.test(version))
    return { reason: 'format', detail: 'bad version' };
  const message = msgB64.length <= MAX_MESSAGE_B64 ? unb64(msgB64) : undefined;
  const comma = message?.indexOf(',') ?? -1;
  const accessAddress = message?.slice(0, comma) ?? '';
  if (comma < 0 || !validAddress(accessAddress)) {
    return { reason: 'format', detail: 'access message does not start with an IP address' };
  }
  const access = parseAccessList(message!.slice(comma + 1));
  if (access === undefined)
    return { reason: 'format', detail: 'access list is not tcp/PORT or udp/PORT entries' };
  let clientTimeoutSeconds: number | undefined;
  if (timeoutText !== undefined) {
    clientTimeoutSeconds = /^[0-9]{1,5}$/.test(timeoutText) ? Number(timeoutText) : 0;
    if (clientTimeoutSeconds < 1 || clientTimeoutSeconds > 65535) {
      return { reason: 'format', detail: 'client timeout is not 1 to 65535 seconds' };
    }
  }
  return {
    randomValue,
    username,
    timestamp: Number(tsText),
    version,
    messageType,
    accessAddress,
    access,
    ...(clientTimeoutSeconds === undefined ? {} : { clientTimeoutSeconds }),
  };
}

/** Strict unpadded base64 to printable ASCII; undefined for anything else. */
function unb64(s: string): string | undefined {
  if (s === '' || s.length % 4 === 1 || !/^[A-Za-z0-9+/]+$/.test(s)) return undefined;
  const bytes = Buffer.from(s, 'base64');
  if (b64(bytes) !== s) return undefined; // non-canonical spelling
  for (const c of bytes) if (c < 0x20 || c > 0x7e) return undefined;
  return bytes.toString('latin1');
}

// fwknop 2.6 itself sends and takes IPv4 only; IPv6 is nonstop's, for its own client. A zone
// (fe80::1%eth0) names an interface of the sender, which means nothing to the guard.
function validAddress(a: string): boolean {
  return isIPv4(a) || (isIPv6(a) && !a.includes('%'));
}

// fwknop's validate_username: printable ASCII without the characters Windows forbids.
function validUsername(u: string): boolean {
  return u.length >= 1 && u.length <= 48 && /^[\x20-\x7e]+$/.test(u) && !/["/\\[\]:;|=,+*?<>]/.test(u);
}

function validAccess(a: SpaAccess): boolean {
  return (
    (a.protocol === 'tcp' || a.protocol === 'udp') &&
    Number.isInteger(a.port) &&
    a.port >= 1 &&
    a.port <= 65535
  );
}

function parseAccessList(text: string): SpaAccess[] | undefined {
  const out: SpaAccess[] = [];
  for (const entry of text.split(',')) {
    const m = /^(tcp|udp)\/([0-9]{1,5})$/.exec(entry);
    const port = Number(m?.[2]);
    if (m === null || port < 1 || port > 65535) return undefined;
    out.push({ protocol: m[1] as 'tcp' | 'udp', port });
  }
  return out;
}
