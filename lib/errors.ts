// One registry of nonstop's error codes. Each has a stable `code`, an HTTP status
// where one applies, and a message a user can act on.

export class NonstopError extends Error {
  readonly code: string;
  /** HTTP status, where the error has one. */
  readonly status: number | undefined;
  readonly details: unknown;

  constructor(
    code: string,
    message: string,
    status: number | undefined,
    details?: unknown,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'NonstopError';
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

type ErrorFactory = ((message?: string, details?: unknown, options?: ErrorOptions) => NonstopError) & {
  readonly code: string;
  readonly status: number | undefined;
};

function createError(code: string, defaultMessage: string, status?: number): ErrorFactory {
  const factory = (message?: string, details?: unknown, options?: ErrorOptions) =>
    new NonstopError(code, message ?? defaultMessage, status, details, options);
  return Object.assign(factory, { code, status });
}

export const errors = {
  // Configuration: fail at start, never inside a request.
  CONFIG_INVALID: createError('NONSTOP_ERR_CONFIG_INVALID', 'Invalid configuration'),
  CONFIG_UNREADABLE: createError('NONSTOP_ERR_CONFIG_UNREADABLE', 'Configuration file cannot be read'),
  ROUTE_SCHEMA_UNSAFE: createError('NONSTOP_ERR_ROUTE_SCHEMA_UNSAFE', 'Route schema is not strict enough'),

  // Client-facing (gateway).
  NOT_FOUND: createError('NONSTOP_ERR_NOT_FOUND', 'No route matches this method and path', 404),
  METHOD_NOT_ALLOWED: createError('NONSTOP_ERR_METHOD_NOT_ALLOWED', 'Method not allowed for this path', 405),
  BODY_TOO_LARGE: createError('NONSTOP_ERR_BODY_TOO_LARGE', 'Request body exceeds the limit', 413),
  HEADERS_TOO_LARGE: createError('NONSTOP_ERR_HEADERS_TOO_LARGE', 'Too many or too large headers', 431),
  UNSUPPORTED_MEDIA_TYPE: createError(
    'NONSTOP_ERR_UNSUPPORTED_MEDIA_TYPE',
    "Request body's content type is not one this route takes",
    415,
  ),
  MALFORMED_JSON: createError('NONSTOP_ERR_MALFORMED_JSON', 'Request body is not valid JSON', 400),
  MALFORMED_BODY: createError(
    'NONSTOP_ERR_MALFORMED_BODY',
    'Request body is malformed for its content type',
    400,
  ),
  CORS_REFUSED: createError('NONSTOP_ERR_CORS_REFUSED', 'Cross-origin request not allowed here', 403),
  BAD_REQUEST: createError('NONSTOP_ERR_BAD_REQUEST', 'Malformed request', 400),
  URI_TOO_LONG: createError('NONSTOP_ERR_URI_TOO_LONG', 'Request URL is too long', 414),
  RATE_LIMITED: createError('NONSTOP_ERR_RATE_LIMITED', 'Too many requests from this address', 429),
  QUEUE_UNAVAILABLE: createError(
    'NONSTOP_ERR_QUEUE_UNAVAILABLE',
    'Service temporarily unavailable; retry shortly',
    503,
  ),
  IDEMPOTENCY_KEY_INVALID: createError(
    'NONSTOP_ERR_IDEMPOTENCY_KEY_INVALID',
    'The Idempotency-Key header must be 1-128 characters from A-Z a-z 0-9 . _ : ~ -',
    400,
  ),
  IDEMPOTENCY_KEY_IN_FLIGHT: createError(
    'NONSTOP_ERR_IDEMPOTENCY_KEY_IN_FLIGHT',
    'A request with this Idempotency-Key is still being processed; retry after a second to get its answer',
    409,
  ),
  IDEMPOTENCY_UNAVAILABLE: createError(
    'NONSTOP_ERR_IDEMPOTENCY_UNAVAILABLE',
    'This gateway is not configured for Idempotency-Key (idempotency.secretFile); send the request without it',
    501,
  ),
  RANGE_NOT_SATISFIABLE: createError(
    'NONSTOP_ERR_RANGE_NOT_SATISFIABLE',
    'The requested range lies outside the file; see Content-Range for its size',
    416,
  ),
  REPLY_TIMEOUT: createError('NONSTOP_ERR_REPLY_TIMEOUT', 'No reply from the backend in time', 504),

  INTERNAL: createError('NONSTOP_ERR_INTERNAL', 'Internal error', 500),

  // Broker.
  VALIDATION_FAILED: createError(
    'NONSTOP_ERR_VALIDATION_FAILED',
    'Request does not match the route schema',
    400,
  ),
  ENVELOPE_INVALID: createError('NONSTOP_ERR_ENVELOPE_INVALID', 'Queued job is not a valid envelope', 400),
  ANSWER_TOO_LARGE: createError('NONSTOP_ERR_ANSWER_TOO_LARGE', 'The answer is too large to carry back', 502),
  CORE_UNAVAILABLE: createError('NONSTOP_ERR_CORE_UNAVAILABLE', 'The core did not answer in time', 504),
  TUNNEL_HOST_KEY_MISMATCH: createError(
    'NONSTOP_ERR_TUNNEL_HOST_KEY_MISMATCH',
    "The gateway's SSH host key does not match the pinned fingerprint",
  ),
  TUNNEL_FAILED: createError('NONSTOP_ERR_TUNNEL_FAILED', 'The tunnel to the gateway could not be set up'),

  // Core.
  UNAUTHENTICATED: createError(
    'NONSTOP_ERR_UNAUTHENTICATED',
    'Client certificate is not a broker certificate',
    403,
  ),
  DEADLINE_EXCEEDED: createError(
    'NONSTOP_ERR_DEADLINE_EXCEEDED',
    'Request deadline passed before execution',
    504,
  ),
  HANDLER_FAILED: createError('NONSTOP_ERR_HANDLER_FAILED', 'The request could not be completed', 500),
  ROUTE_UNKNOWN: createError('NONSTOP_ERR_ROUTE_UNKNOWN', 'The route is not in the route table', 404),
  IDEMPOTENCY_CONFLICT: createError(
    'NONSTOP_ERR_IDEMPOTENCY_CONFLICT',
    'This request id was already used by another route or gateway',
    409,
  ),
  IDEMPOTENCY_KEY_REUSED: createError(
    'NONSTOP_ERR_IDEMPOTENCY_KEY_REUSED',
    'Idempotency-Key reused for a different request; use a new key for a new request',
    422,
  ),
  DATABASE_UNAVAILABLE: createError(
    'NONSTOP_ERR_DATABASE_UNAVAILABLE',
    'The database is unavailable; retry shortly',
    503,
  ),
  APPLICATION_INVALID: createError(
    'NONSTOP_ERR_APPLICATION_INVALID',
    'The application does not match the route table',
  ),

  // Core, upstream mode: the application's own HTTP server. Each is stored and replayed.
  UPSTREAM_TIMEOUT: createError(
    'NONSTOP_ERR_UPSTREAM_TIMEOUT',
    'The application did not answer in time; whether it acted is unknown',
    504,
  ),
  UPSTREAM_UNREACHABLE: createError(
    'NONSTOP_ERR_UPSTREAM_UNREACHABLE',
    'The application is not reachable (connection refused)',
    502,
  ),
  UPSTREAM_FAILED: createError(
    'NONSTOP_ERR_UPSTREAM_FAILED',
    'The application broke off its answer or sent one that cannot be carried',
    502,
  ),
  UPSTREAM_ANSWER_TOO_LARGE: createError(
    'NONSTOP_ERR_UPSTREAM_ANSWER_TOO_LARGE',
    "The application's answer exceeds the upstream's maxResponseBytes",
    502,
  ),
  UPSTREAM_OUTCOME_UNKNOWN: createError(
    'NONSTOP_ERR_UPSTREAM_OUTCOME_UNKNOWN',
    'This request reached the application but its answer was lost; it is not sent again. Check the application before retrying with a new request',
    502,
  ),

  // Gateway certificates from ACME (gateway/acme/manager.ts); each is logged, then retried.
  ACME_RATE_LIMITED: createError(
    'NONSTOP_ERR_ACME_RATE_LIMITED',
    'The ACME server refuses more orders for now (rate limited); the gateway retries later',
  ),
  ACME_CHALLENGE_FAILED: createError(
    'NONSTOP_ERR_ACME_CHALLENGE_FAILED',
    'The ACME server could not validate a challenge: check that the names point at the gateways and ports 80/443 reach them',
  ),
  ACME_CA_UNREACHABLE: createError(
    'NONSTOP_ERR_ACME_CA_UNREACHABLE',
    'The ACME server is unreachable or failing (check https.acme.directoryUrl, DNS and outbound HTTPS)',
  ),
  ACME_ORDER_FAILED: createError('NONSTOP_ERR_ACME_ORDER_FAILED', 'The ACME server refused the order'),
  ACME_STATE_INVALID: createError(
    'NONSTOP_ERR_ACME_STATE_INVALID',
    "The ACME state folder cannot be used (https.acme.stateDir): it must be the gateway user's, mode 0700",
  ),

  // Key generation.
  PKI_FAILED: createError('NONSTOP_ERR_PKI_FAILED', 'Key or certificate generation failed'),
  REDIS_ADMIN_FAILED: createError(
    'NONSTOP_ERR_REDIS_ADMIN_FAILED',
    'A running Redis could not be changed (nonstop redis-acl --apply-passwords)',
  ),

  // Knock guard and knock CLI.
  NFT_FAILED: createError('NONSTOP_ERR_NFT_FAILED', 'nft refused the ruleset or command'),
  GUARD_SOCKET: createError(
    'NONSTOP_ERR_GUARD_SOCKET',
    'Cannot open the raw sockets the guard reads knocks from (run as root)',
  ),
  KNOCK_PROFILE_NOT_FOUND: createError('NONSTOP_ERR_KNOCK_PROFILE_NOT_FOUND', 'No such knock profile'),
  KNOCK_FAILED: createError('NONSTOP_ERR_KNOCK_FAILED', 'Could not send the knock sequence'),
  SPA_KEY_INVALID: createError(
    'NONSTOP_ERR_SPA_KEY_INVALID',
    'The SPA key file is not what `fwknop --key-gen` prints (KEY_BASE64 and HMAC_KEY_BASE64 lines)',
  ),
  SPA_REQUEST_INVALID: createError(
    'NONSTOP_ERR_SPA_REQUEST_INVALID',
    'The SPA request cannot be encoded (username, access address, access list or timeout)',
  ),
} as const;

export function isNonstopError(value: unknown): value is NonstopError {
  return value instanceof NonstopError;
}
