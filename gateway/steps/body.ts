// The request body, read up to the route's limit and decoded by its content type into the JSON
// value the envelope carries: JSON, a form, text or multipart, as the route takes them.
import type { GatewayConfig } from '../../config/schemas/gateway.js';
import { errors } from '../../lib/errors.js';
import { hasBody, MAX_JSON_DEPTH, nestedDeeperThan, readBody } from '../body.js';
import {
  decodeForm,
  decodeMultipart,
  decodeText,
  MEDIA_TYPE_NAMES,
  mediaTypeOf,
  type Decoded,
} from '../body-decoders.js';
import { refusal, type Routed, type Step } from './exchange.js';

/** JSON must be UTF-8 (RFC 8259): invalid bytes are malformed JSON, not U+FFFD. A BOM stays in
 * the text, so JSON.parse refuses it as before. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeJson(raw: Buffer): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(raw)) as unknown;
  } catch {
    return { ok: false, error: 'json' };
  }
  if (nestedDeeperThan(value, MAX_JSON_DEPTH)) return { ok: false, error: 'deep' };
  return { ok: true, value };
}

export function body(limits: GatewayConfig['limits']): Step<Routed> {
  return async (x) => {
    const { req, route } = x;
    if (!hasBody(req)) return undefined;
    if (route.schema.body === undefined) {
      return refusal(errors.BAD_REQUEST(`${route.method} ${route.path} takes no request body`));
    }
    const type = mediaTypeOf(req.headers['content-type']);
    if (type === undefined || !route.bodyTypes.includes(type.kind)) {
      const takes = route.bodyTypes.map((t) => MEDIA_TYPE_NAMES[t]).join(', ');
      return refusal(errors.UNSUPPORTED_MEDIA_TYPE(`${route.method} ${route.path} takes ${takes}`));
    }
    const limit = Math.min(route.maxBodyBytes ?? limits.maxBodyBytes, limits.maxBodyBytes);
    const raw = await readBody(req, limit);
    if (type.kind === 'json') {
      const json = decodeJson(raw);
      if (!json.ok) {
        return refusal(
          json.error === 'deep'
            ? errors.MALFORMED_JSON(`Request body nests deeper than ${MAX_JSON_DEPTH} levels`)
            : errors.MALFORMED_JSON(),
        );
      }
      x.body = json.value;
      return undefined;
    }
    const decoded =
      type.kind === 'form'
        ? decodeForm(raw, type)
        : type.kind === 'text'
          ? decodeText(raw, type)
          : decodeMultipart(raw, type, route.multipart);
    if (!decoded.ok) return refusal(errors.MALFORMED_BODY(decoded.error));
    x.body = decoded.value;
    x.bodyType = type.kind;
    return undefined;
  };
}
