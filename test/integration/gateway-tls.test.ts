// The gateway's HTTPS listener, the HTTP→HTTPS redirect, and certificate reload on SIGHUP,
// against a real `nonstop gateway` process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { generatePki } from '../../lib/pki.js';
import { exampleRoutesFile, tempDir } from '../helpers/files.js';
import { usePki } from '../helpers/pki.js';
import { REDIS_HOST, REDIS_PORT } from '../helpers/redis.js';

const CLI = fileURLToPath(new URL('../../cli/index.js', import.meta.url));

/** The SHA-256 fingerprint of the certificate a TLS server presents. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false },
      () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.end();
      },
    );
    socket.on('error', reject);
  });
}

function httpGet(port: number, path: string, host: string): Promise<{ status: number; location?: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, location: res.headers.location });
    });
    req.on('error', reject);
    req.end();
  });
}

function certFingerprint(file: string): string {
  return new X509Certificate(readFileSync(file)).fingerprint256;
}

describe('gateway TLS', () => {
  const pki = usePki();

  test('HTTPS serves, HTTP redirects, and SIGHUP swaps the certificate', async (t) => {
    const dir = tempDir(t);
    const cert = join(dir, 'gw.crt');
    const key = join(dir, 'gw.key');
    copyFileSync(pki().gateways.gw1!.cert, cert);
    copyFileSync(pki().gateways.gw1!.key, key);
    const configFile = join(dir, 'gateway.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        kind: 'gateway',
        id: 'gw1',
        routes: exampleRoutesFile,
        logLevel: 'info',
        http: { host: '127.0.0.1', port: 0, mode: 'redirect' },
        https: { host: '127.0.0.1', port: 0, cert, key },
        redis: { host: REDIS_HOST, port: REDIS_PORT, prefix: `tls${process.pid}` },
      }),
    );
    const child = spawn(process.execPath, [CLI, 'gateway', '--config', configFile], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    t.after(() => child.kill('SIGKILL'));
    // The "gateway listening" log line says which ports the OS gave it.
    const ports = await new Promise<{ http: number; https: number }>((resolve, reject) => {
      let buffer = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        buffer += chunk;
        const line = buffer.split('\n').find((l) => l.includes('"gateway listening"'));
        if (line === undefined) return;
        const parsed = JSON.parse(line) as { http: { port: number }; https: { port: number } };
        resolve({ http: parsed.http.port, https: parsed.https.port });
      });
      child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
      setTimeout(() => reject(new Error('the gateway did not report its ports within 15 s')), 15_000).unref();
    });

    const original = await servedFingerprint(ports.https);
    assert.equal(original, certFingerprint(pki().gateways.gw1!.cert));

    const health = await fetch(`https://localhost:${ports.https}/healthz`).catch((err: Error) => err);
    assert.ok(health instanceof Error, 'a client that does not trust the public CA refuses the gateway');

    const redirect = await httpGet(ports.http, '/notes?limit=2', 'example.test:80');
    assert.equal(redirect.status, 308);
    assert.equal(redirect.location, `https://example.test:${ports.https}/notes?limit=2`);
    assert.equal((await httpGet(ports.http, '/', 'bad host\\evil')).status, 400);

    // A broken certificate file on SIGHUP: the old certificate stays in service.
    writeFileSync(cert, 'not a certificate');
    child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await servedFingerprint(ports.https), original);

    // A new certificate on SIGHUP is served to new connections.
    const next = await generatePki({ dir: join(dir, 'next'), gateways: ['gw1'], brokers: ['b1'] });
    copyFileSync(next.gateways.gw1!.cert, cert);
    copyFileSync(next.gateways.gw1!.key, key);
    child.kill('SIGHUP');
    const expected = certFingerprint(next.gateways.gw1!.cert);
    let served = '';
    for (let i = 0; i < 40 && served !== expected; i++) {
      await new Promise((r) => setTimeout(r, 50));
      served = await servedFingerprint(ports.https);
    }
    assert.equal(served, expected);
    assert.notEqual(served, original);

    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 0, 'a gateway stops cleanly on SIGTERM');
  });
});
