// A tiny HTTP(S) client the world runs inside a host (the internet host, usually): sends the
// requests given as JSON in argv[2], one after another, and prints one JSON line per answer
// ({ status, headers, body, ms } or { status: 0, error }). Used by `nonstop demo` and the tests.
// An IPv6 gateway is given as a URL with the address in brackets: `https://[2001:2:0:1::b]/notes`
// (node:http connects to the bare address and sends `host: [2001:2:0:1::b]`; TLS checks the IP SAN).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

interface Spec {
  readonly ca?: string;
  readonly requests: readonly {
    readonly method: string;
    readonly url: string;
    readonly body?: string;
    readonly headers: Readonly<Record<string, string>>;
    readonly timeoutMs: number;
  }[];
}

const spec = JSON.parse(process.argv[2] ?? '{"requests":[]}') as Spec;
const ca = spec.ca === undefined ? undefined : readFileSync(spec.ca);
const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true, ca }) };

function send(r: Spec['requests'][number]): Promise<Record<string, unknown>> {
  const started = Date.now();
  let url: URL;
  try {
    url = new URL(r.url);
  } catch {
    // One bad URL (a bare IPv6 address, say) is that request's answer, not the end of the run.
    return Promise.resolve({ status: 0, headers: {}, body: '', ms: 0, error: `invalid URL ${r.url}` });
  }
  const lib = url.protocol === 'https:' ? https : http;
  const headers: Record<string, string> = { ...r.headers };
  if (r.body !== undefined && headers['content-type'] === undefined)
    headers['content-type'] = 'application/json';
  return new Promise((resolve) => {
    const req = lib.request(
      url,
      { method: r.method, headers, agent: url.protocol === 'https:' ? agents.https : agents.http },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          const h: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h[k] = v;
          resolve({ status: res.statusCode ?? 0, headers: h, body, ms: Date.now() - started });
        });
        res.on('error', (err) =>
          resolve({ status: 0, headers: {}, body, ms: Date.now() - started, error: err.message }),
        );
      },
    );
    req.setTimeout(r.timeoutMs, () => req.destroy(new Error(`no answer within ${r.timeoutMs} ms`)));
    req.on('error', (err) =>
      resolve({ status: 0, headers: {}, body: '', ms: Date.now() - started, error: err.message }),
    );
    req.end(r.body);
  });
}

for (const r of spec.requests) console.log(JSON.stringify(await send(r)));
agents.http.destroy();
agents.https.destroy();
