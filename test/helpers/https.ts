// One HTTPS request with an optional client certificate, answered as status, headers and JSON.
// A fresh connection each time (no agent), so each request does its own TLS handshake.
import { request } from 'node:https';

export interface TlsClient {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export interface JsonAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** Parsed JSON body; the raw text when it is not JSON. */
  readonly body: unknown;
}

export interface RequestOptions {
  readonly method?: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Sent as is when a string or Buffer, else JSON-encoded. */
  readonly body?: unknown;
  readonly servername?: string;
}

export function httpsJson(
  address: { host: string; port: number },
  tls: TlsClient,
  options: RequestOptions,
): Promise<JsonAnswer> {
  const payload =
    options.body === undefined
      ? undefined
      : typeof options.body === 'string' || Buffer.isBuffer(options.body)
        ? options.body
        : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: address.host,
        port: address.port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers,
        agent: false,
        servername: options.servername ?? 'localhost',
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = text;
          try {
            body = JSON.parse(text) as unknown;
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
