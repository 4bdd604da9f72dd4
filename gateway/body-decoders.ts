// Request bodies other than JSON, decoded into the JSON value the envelope carries: a form into
// an object of strings, text into a string, multipart/form-data into fields and files. Each
// bounds what it builds; a malformed body is refused with what is wrong, never half-decoded.
import type { MultipartLimits } from '../config/schemas/routes.js';
import type { BodyType, UploadedFile } from '../lib/envelope.js';

/** A form or multipart body has at most this many fields (names repeated included). */
export const MAX_FORM_FIELDS = 256;
const MAX_FIELD_NAME = 128;
const MAX_PART_HEADER_BYTES = 8192;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export type Decoded =
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string };

export interface MediaType {
  readonly kind: BodyType;
  readonly params: Readonly<Record<string, string>>;
}

/** The body type a Content-Type names, with its parameters; undefined for any other. */
export function mediaTypeOf(header: string | undefined): MediaType | undefined {
  if (header === undefined) return undefined;
  const semi = header.indexOf(';');
  const type = (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase();
  const params: Record<string, string> = {};
  // name=token or name="quoted string" (a quoted value may hold ';'; \x escapes x: RFC 9110, 5.6.4).
  const re = /;\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))\s*/g;
  for (const m of (semi === -1 ? '' : header.slice(semi)).matchAll(re)) {
    params[m[1]!.toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]!;
  }
  const kind: BodyType | undefined =
    type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))
      ? 'json'
      : type === 'application/x-www-form-urlencoded'
        ? 'form'
        : type === 'text/plain'
          ? 'text'
          : type === 'multipart/form-data'
            ? 'multipart'
            : undefined;
  return kind === undefined ? undefined : { kind, params };
}

/** The Content-Type a body type is sent as, for messages. */
export const MEDIA_TYPE_NAMES: Readonly<Record<BodyType, string>> = {
  json: 'application/json',
  form: 'application/x-www-form-urlencoded',
  text: 'text/plain',
  multipart: 'multipart/form-data',
};

function utf8Charset(params: Readonly<Record<string, string>>): boolean {
  const charset = params.charset?.toLowerCase();
  return charset === undefined || charset === 'utf-8' || charset === 'utf8' || charset === 'us-ascii';
}

function text(raw: Buffer): string | null {
  try {
    return UTF8.decode(raw);
  } catch {
    return null;
  }
}

/** Adds a field, turning a repeated name into an array of its values in order. */
function addField(out: Record<string, unknown>, name: string, value: unknown): void {
  const existing = out[name];
  if (existing === undefined) out[name] = value;
  else if (Array.isArray(existing)) existing.push(value);
  else out[name] = [existing, value];
}

export function decodeForm(raw: Buffer, type: MediaType): Decoded {
  if (!utf8Charset(type.params)) return { ok: false, error: 'Form bodies must be UTF-8' };
  const source = text(raw);
  if (source === null) return { ok: false, error: 'Form body is not valid UTF-8' };
  const out = Object.create(null) as Record<string, unknown>;
  let fields = 0;
  for (const pair of source.split('&')) {
    if (pair === '') continue;
    if (++fields > MAX_FORM_FIELDS)
      return { ok: false, error: `Form body has more than ${MAX_FORM_FIELDS} fields` };
    const eq = pair.indexOf('=');
    const name = formComponent(eq === -1 ? pair : pair.slice(0, eq));
    const value = formComponent(eq === -1 ? '' : pair.slice(eq + 1));
    if (name === null || value === null)
      return { ok: false, error: 'Form body has malformed percent-encoding' };
    if (name === '' || name.length > MAX_FIELD_NAME) {
      return { ok: false, error: `Form field names must be 1 to ${MAX_FIELD_NAME} characters` };
    }
    addField(out, name, value);
  }
  return { ok: true, value: { ...out } };
}

/** application/x-www-form-urlencoded's percent-decoding ('+' is a space); null when malformed. */
function formComponent(s: string): string | null {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

export function decodeText(raw: Buffer, type: MediaType): Decoded {
  if (!utf8Charset(type.params)) return { ok: false, error: 'Text bodies must be UTF-8' };
  const value = text(raw);
  return value === null ? { ok: false, error: 'Text body is not valid UTF-8' } : { ok: true, value };
}

/** Parameters of a part's Content-Disposition (`form-data; name="a"; filename="b.png"`). */
function disposition(value: string): Record<string, string> | null {
  const [kind = '', ...rest] = value.split(';');
  if (kind.trim().toLowerCase() !== 'form-data') return null;
  const params: Record<string, string> = {};
  // Quoted values may hold ';'. Browsers send a quote inside one as %22 and a backslash as is
  // (the HTML standard's multipart/form-data), so a backslash escapes nothing here.
  const re = /\s*([A-Za-z*]+)\s*=\s*("([^"]*)"|[^;\s]*)\s*(?:;|$)/y;
  const tail = rest.join(';');
  while (re.lastIndex < tail.length) {
    const m = re.exec(tail);
    if (m === null) return null;
    params[m[1]!.toLowerCase()] = m[3] !== undefined ? m[3].replace(/%22/g, '"') : m[2]!;
  }
  return params;
}

const PART_TYPE = /^[A-Za-z0-9!#$&^_.+-]{1,127}\/[A-Za-z0-9!#$&^_.+-]{1,127}$/;

/** The name a file part gives, without any folder a browser may prefix (old IE sends paths). */
function baseName(filename: string): string {
  const base = filename.split(/[\\/]/).pop() ?? '';
  return [...base]
    .filter((c) => c.charCodeAt(0) >= 0x20 && c.charCodeAt(0) !== 0x7f)
    .join('')
    .slice(0, 255);
}

export function decodeMultipart(raw: Buffer, type: MediaType, limits: MultipartLimits): Decoded {
  const boundary = type.params.boundary;
  if (
    boundary === undefined ||
    !/^[0-9A-Za-z'()+_,\-./:=? ]{1,70}$/.test(boundary) ||
    boundary.endsWith(' ')
  ) {
    return { ok: false, error: 'multipart/form-data needs a boundary parameter of 1 to 70 characters' };
  }
  const delimiter = Buffer.from(`--${boundary}`);
  const between = Buffer.from(`\r\n--${boundary}`);
  const out = Object.create(null) as Record<string, unknown>;
  // The first delimiter may follow a preamble; every later one follows a CRLF.
  let at = raw.indexOf(delimiter);
  if (at === -1) return { ok: false, error: 'Multipart body has no boundary' };
  at += delimiter.length;
  let parts = 0;
  for (;;) {
    if (raw.subarray(at, at + 2).toString('latin1') === '--') return { ok: true, value: { ...out } };
    // Transport padding (spaces, tabs) may follow a delimiter before its CRLF.
    while (raw[at] === 0x20 || raw[at] === 0x09) at++;
    if (raw.subarray(at, at + 2).toString('latin1') !== '\r\n')
      return { ok: false, error: 'Multipart delimiter not followed by CRLF' };
    at += 2;
    if (++parts > limits.maxParts)
      return { ok: false, error: `Multipart body has more than ${limits.maxParts} parts` };
    const headerEnd = raw.indexOf('\r\n\r\n', at, 'latin1');
    if (headerEnd === -1 || headerEnd - at > MAX_PART_HEADER_BYTES) {
      return { ok: false, error: 'Multipart part headers are missing or too long' };
    }
    const headers: Record<string, string> = {};
    for (const line of raw.subarray(at, headerEnd).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon <= 0) return { ok: false, error: 'Multipart part has a malformed header' };
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const contentStart = headerEnd + 4;
    const end = raw.indexOf(between, contentStart);
    if (end === -1) return { ok: false, error: 'Multipart body ends inside a part' };
    const content = raw.subarray(contentStart, end);
    at = end + between.length;
    const disp = disposition(headers['content-disposition'] ?? '');
    const name = disp?.name;
    if (disp === null || name === undefined || name === '' || name.length > MAX_FIELD_NAME) {
      return { ok: false, error: 'Each multipart part needs a Content-Disposition: form-data with a name' };
    }
    if (disp.filename === undefined) {
      if (content.length > limits.maxFieldBytes) {
        return {
          ok: false,
          error: `Multipart field "${name.slice(0, 64)}" exceeds ${limits.maxFieldBytes} bytes`,
        };
      }
      const value = text(content);
      if (value === null)
        return { ok: false, error: `Multipart field "${name.slice(0, 64)}" is not valid UTF-8` };
      addField(out, name, value);
      continue;
    }
    if (content.length > limits.maxFileBytes) {
      return {
        ok: false,
        error: `Multipart file "${name.slice(0, 64)}" exceeds ${limits.maxFileBytes} bytes`,
      };
    }
    const partType = (headers['content-type'] ?? 'application/octet-stream')
      .split(';', 1)[0]!
      .trim()
      .toLowerCase();
    if (!PART_TYPE.test(partType))
      return { ok: false, error: `Multipart file "${name.slice(0, 64)}" has a malformed Content-Type` };
    const file: UploadedFile = {
      filename: baseName(disp.filename),
      type: partType,
      size: content.length,
      base64: content.toString('base64'),
    };
    addField(out, name, file);
  }
}
