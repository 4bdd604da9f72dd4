// Schema of the route table (`"kind": "routes"`), read by gateway, broker and core alike.
import type { BodyType } from '../../lib/envelope.js';
import { schemaKeySchema } from './common.js';

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
const HEADER_NAME = "^[a-z0-9!#$%&'*+.^_`|~-]{1,64}$";
/** A cookie name (an RFC 6265 token). */
const COOKIE_NAME = "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$";

/**
 * Who may call a route from a web page of another origin (CORS): the gateway answers the
 * preflight itself and adds the headers to the route's answers. `origins`: exact origins
 * (`https://app.example.com`) or `*` (any, never with credentials).
 */
const corsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['origins'],
  properties: {
    origins: {
      type: 'array',
      minItems: 1,
      maxItems: 64,
      uniqueItems: true,
      items: {
        type: 'string',
        pattern: '^(\\*|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\\[[0-9a-fA-F:.]+\\](:[0-9]{1,5})?)$',
      },
    },
    // Methods a page may use; default: the methods the path has.
    methods: { type: 'array', maxItems: 5, uniqueItems: true, items: { enum: METHODS } },
    // Request headers a page may send beyond the CORS-safelisted ones (lower case).
    headers: {
      type: 'array',
      maxItems: 32,
      uniqueItems: true,
      items: { type: 'string', pattern: HEADER_NAME },
    },
    // Response headers a page may read beyond the safelisted ones.
    exposeHeaders: {
      type: 'array',
      maxItems: 32,
      uniqueItems: true,
      items: { type: 'string', pattern: HEADER_NAME },
    },
    // Cookies and Authorization from the page (Access-Control-Allow-Credentials); default false.
    credentials: { type: 'boolean' },
    // How long a browser may keep a preflight's answer; default 600 (CORS_MAX_AGE_SECONDS).
    maxAgeSeconds: { type: 'integer', minimum: 0, maximum: 86400 },
  },
} as const;

export const routesSchema = {
  $id: 'nonstop/routes',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'routes'],
  properties: {
    $schema: schemaKeySchema,
    kind: { const: 'routes' },
    // The CORS policy of every route that does not set its own (none when absent).
    cors: corsSchema,
    // Whether the replies of routes that do not set their own `compress` may be compressed.
    // Absent: those of routes that take no cookies, when the reply sets none (BREACH).
    compress: { type: 'boolean' },
    routes: {
      type: 'array',
      minItems: 1,
      maxItems: 1024,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'method', 'path'],
        properties: {
          name: { type: 'string', pattern: '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$', maxLength: 128 },
          method: { type: 'string', enum: METHODS },
          path: { type: 'string', pattern: '^(/(:?[A-Za-z0-9_.~-]+))+$|^/$', maxLength: 512 },
          timeoutMs: { type: 'integer', minimum: 100, maximum: 600000 },
          maxBodyBytes: { type: 'integer', minimum: 0, maximum: 67108864 },
          // How a client may send the body; each is decoded into a JSON value the body schema
          // validates (form and multipart fields coerced to the declared types).
          bodyTypes: {
            type: 'array',
            minItems: 1,
            uniqueItems: true,
            items: { enum: ['json', 'form', 'text', 'multipart'] },
            default: ['json'],
          },
          // multipart/form-data bounds: parts in all, and the bytes of one file or one field.
          multipart: {
            type: 'object',
            additionalProperties: false,
            properties: {
              maxParts: { type: 'integer', minimum: 1, maximum: 256, default: 16 },
              maxFileBytes: { type: 'integer', minimum: 1, maximum: 67108864, default: 1048576 },
              maxFieldBytes: { type: 'integer', minimum: 1, maximum: 1048576, default: 65536 },
            },
            default: {},
          },
          // Cookies are identity: only these names reach the application, and a request that
          // carries another is refused (set a cookie's Path so browsers send it where it belongs).
          cookies: {
            type: 'array',
            maxItems: 32,
            uniqueItems: true,
            items: { type: 'string', pattern: COOKIE_NAME },
            default: [],
          },
          // This route's CORS policy, over the table's `cors`; false: none for this route.
          cors: { anyOf: [corsSchema, { const: false }] },
          // May the gateway compress this route's replies (over the table's `compress`)? Only
          // when no reply mixes a secret with what an attacker sent (BREACH; README).
          compress: { type: 'boolean' },
          schema: {
            type: 'object',
            additionalProperties: false,
            properties: {
              params: { type: 'object' },
              query: { type: 'object' },
              body: { type: 'object' },
            },
            default: {},
          },
        },
      },
    },
  },
} as const;

export type HttpMethod = (typeof METHODS)[number];

export interface CorsPolicy {
  readonly origins: readonly string[];
  readonly methods?: readonly HttpMethod[];
  readonly headers?: readonly string[];
  readonly exposeHeaders?: readonly string[];
  readonly credentials?: boolean;
  readonly maxAgeSeconds?: number;
}

/** A preflight's answer is kept this long unless the policy says otherwise (seconds). */
export const CORS_MAX_AGE_SECONDS = 600;

export interface MultipartLimits {
  readonly maxParts: number;
  readonly maxFileBytes: number;
  readonly maxFieldBytes: number;
}

export interface RouteDefinition {
  readonly name: string;
  readonly method: HttpMethod;
  readonly path: string;
  readonly timeoutMs?: number;
  readonly maxBodyBytes?: number;
  readonly bodyTypes: readonly BodyType[];
  readonly multipart: MultipartLimits;
  readonly cookies: readonly string[];
  readonly cors?: CorsPolicy | false;
  readonly compress?: boolean;
  readonly schema: {
    readonly params?: Readonly<Record<string, unknown>>;
    readonly query?: Readonly<Record<string, unknown>>;
    readonly body?: Readonly<Record<string, unknown>>;
  };
}

export interface RoutesConfig {
  readonly kind: 'routes';
  readonly cors?: CorsPolicy;
  readonly compress?: boolean;
  readonly routes: readonly RouteDefinition[];
}
