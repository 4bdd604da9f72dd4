// The request and response the gateway's steps see: Node's HTTP/1.x objects, or its HTTP/2
// compatibility ones (one stream of an h2 session). Both are read and written the same way;
// where the protocols differ (hop-by-hop headers, closing after a refusal) respond.ts decides.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

export type GatewayRequest = IncomingMessage | Http2ServerRequest;
export type GatewayResponse = ServerResponse | Http2ServerResponse;

/** Headers that belong to one HTTP/1.1 connection; HTTP/2 forbids them (RFC 9113, 8.2.2). */
export const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade'];

export function isHttp2(res: GatewayResponse): res is Http2ServerResponse {
  return res instanceof Http2ServerResponse;
}

export function isHttp2Request(req: GatewayRequest): req is Http2ServerRequest {
  return req instanceof Http2ServerRequest;
}

/** `headers` without the hop-by-hop ones when `res` is an HTTP/2 stream. */
export function forProtocol(res: GatewayResponse, headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
  if (!isHttp2(res)) return headers;
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.includes(name.toLowerCase())) out[name] = value;
  }
  return out;
}
