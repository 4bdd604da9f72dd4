// What an application gives the core: its migrations and one handler per route name. A handler
// runs inside the request's transaction; whatever it returns is stored with the request id and
// replayed, unchanged, to any repeat of that id.
import type { Queryable } from './db/database.js';
import type { Migration } from './db/migrate.js';

export type { Migration, Queryable };

export interface HandlerContext {
  /** The request's transaction: the handler's effects commit together with its response. */
  readonly tx: Queryable;
  readonly route: string;
  /** Path parameters, validated by the broker against the route schema. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string | string[]>>;
  /** Parsed JSON body, validated by the broker (defaults applied); null when there was none. */
  readonly body: unknown;
  readonly headers: Readonly<Record<string, string>>;
  readonly requestId: string;
  readonly clientIp: string;
  readonly gatewayId: string;
  /** When the gateway received the request (ms since epoch). */
  readonly receivedAt: number;
}

export interface AppResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Any JSON value; omitted means an empty body. */
  readonly body?: unknown;
  /**
   * A body of another type (HTML, an image, …): its media type and its text or bytes. Exclusive
   * with `body`.
   */
  readonly content?: { readonly type: string; readonly data: string | Uint8Array };
  /** Set-Cookie values, one cookie each (at most MAX_REPLY_COOKIES, lib/envelope.ts). */
  readonly cookies?: readonly string[];
}

export type Handler = (ctx: HandlerContext) => Promise<AppResponse>;

export interface Application {
  readonly name: string;
  readonly migrations: readonly Migration[];
  readonly handlers: Readonly<Record<string, Handler>>;
}

/** A JSON error body in the same shape nonstop uses for its own errors. */
export function errorResponse(status: number, code: string, message: string): AppResponse {
  return { status, body: { error: { code, message } } };
}
