// The knock guard's metrics listener, with real raw sockets: knocks sent to this host's loopback
// as the divert chain would deliver them (IP protocol 253/254, the original TCP/UDP header) show
// in the scraped counters. The nft the guard runs is a script that records its input: this test
// loads no ruleset and changes nothing in the machine's network namespace (root: raw sockets).
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import raw, { type RawSocket } from 'raw-socket';
import { parseGuardConfig } from '../../config/knock.js';
import { KnockGuard } from '../../knock/guard.js';
import { silentLogger } from '../../lib/log.js';
import { httpAsk, sampleValue } from '../helpers/prometheus.js';
import { until } from '../helpers/until.js';

const skip = process.getuid?.() === 0 ? false : 'needs root (raw sockets)';
const TCP = 253;
const UDP = 254;

/** An IPv4 packet from `source` to 127.0.0.1 carrying a TCP (SYN unless `flags`) or UDP header. */
function knockPacket(source: string, protocol: 'tcp' | 'udp', port: number, flags = 0x02): Buffer {
  const l4 = Buffer.alloc(protocol === 'tcp' ? 20 : 8);
  l4.writeUInt16BE(40000, 0);
  l4.writeUInt16BE(port, 2);
  if (protocol === 'tcp') {
    l4[12] = 5 << 4;
    l4[13] = flags;
  } else l4.writeUInt16BE(8, 4);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45;
  ip.writeUInt16BE(20 + l4.length, 2);
  ip[8] = 64;
  ip[9] = protocol === 'tcp' ? TCP : UDP;
  Buffer.from(source.split('.').map(Number)).copy(ip, 12);
  Buffer.from([127, 0, 0, 1]).copy(ip, 16);
  return Buffer.concat([ip, l4]); // the kernel fills in the IP checksum (IP_HDRINCL)
}

describe('knock guard metrics', { skip }, () => {
  let dir: string;
  let guard: KnockGuard;
  let sender: RawSocket;
  let port: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nonstop-guard-metrics-'));
    const nft = join(dir, 'nft');
    writeFileSync(nft, `#!/bin/sh\ncat >> ${join(dir, 'nft.log')}\n`);
    chmodSync(nft, 0o755);
    const config = parseGuardConfig('guard.json', {
      kind: 'guard',
      gateway: 'gw1',
      logLevel: 'silent',
      nft,
      maxTrackedSources: 16,
      statsIntervalSeconds: 0,
      static: [{ name: 'ops', sequence: ['7000', '8000:udp'] }],
      metrics: { port: 0 },
    });
    guard = new KnockGuard(config, silentLogger());
    await guard.start();
    port = guard.metricsAddress!.port;
    // IPPROTO_RAW: send only, the IP header ours (any loopback source address).
    sender = raw.createSocket({ protocol: 255, addressFamily: raw.AddressFamily.IPv4 });
    sender.setOption(raw.SocketLevel.IPPROTO_IP, raw.SocketOption.IP_HDRINCL, 1);
  });
  after(async () => {
    sender?.close();
    await guard?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const send = (packet: Buffer) =>
    new Promise<void>((resolve, reject) =>
      sender.send(packet, 0, packet.length, '127.0.0.1', null, (err) => (err ? reject(err) : resolve())),
    );
  const scrape = async () => {
    const r = await httpAsk(port, '/metrics');
    assert.equal(r.status, 200);
    return r.body;
  };
  const value = async (name: string, labels: Record<string, string> = {}) =>
    sampleValue(await scrape(), name, labels) ?? Number.NaN;

  test('starts at zero, with the process metrics and the tracker limit', async () => {
    const text = await scrape();
    assert.equal(sampleValue(text, 'nonstop_guard_knocks_total'), 0);
    assert.equal(sampleValue(text, 'nonstop_guard_sequences_total', { outcome: 'opened' }), 0);
    assert.equal(sampleValue(text, 'nonstop_guard_tracked_sources'), 0);
    assert.equal(sampleValue(text, 'nonstop_guard_tracked_sources_limit'), 16);
    assert.ok((sampleValue(text, 'nonstop_guard_process_start_time_seconds') ?? 0) > 0);
    assert.equal((await httpAsk(port, '/metrics', 'GET', { host: 'evil.example' })).status, 421);
  });

  test('a completed sequence, a failed one and a malformed knock are counted; a window opens', async () => {
    await send(knockPacket('127.0.0.1', 'tcp', 7000));
    await until(
      'the first step tracked',
      async () => (await value('nonstop_guard_tracked_sources')) === 1,
      3000,
    );
    await send(knockPacket('127.0.0.1', 'udp', 8000));
    await until(
      'the sequence completed',
      async () => (await value('nonstop_guard_sequences_total', { outcome: 'opened' })) === 1,
      3000,
    );
    await until(
      'the window opened',
      async () => (await value('nonstop_guard_windows_opened_total')) === 1,
      3000,
    );
    assert.match(readFileSync(join(dir, 'nft.log'), 'utf8'), /127\.0\.0\.1/);

    await send(knockPacket('127.0.0.2', 'tcp', 7000));
    await send(knockPacket('127.0.0.2', 'tcp', 9999));
    await send(knockPacket('127.0.0.3', 'tcp', 7000, 0x12)); // SYN-ACK: not a knock
    await until(
      'the wrong step counted',
      async () => (await value('nonstop_guard_sequences_total', { outcome: 'failed' })) === 1,
      3000,
    );
    const text = await scrape();
    assert.equal(sampleValue(text, 'nonstop_guard_knocks_total'), 5);
    assert.equal(sampleValue(text, 'nonstop_guard_malformed_knocks_total'), 1);
    assert.equal(sampleValue(text, 'nonstop_guard_tracked_sources'), 0);
    assert.equal(sampleValue(text, 'nonstop_guard_window_errors_total'), 0);
  });

  test('more sources than the tracker holds are evicted, and counted', async () => {
    for (let i = 1; i <= 20; i++) await send(knockPacket(`127.0.1.${i}`, 'tcp', 7000));
    await until(
      'twenty first steps read',
      async () => (await value('nonstop_guard_knocks_total')) === 25,
      3000,
    );
    const text = await scrape();
    assert.equal(sampleValue(text, 'nonstop_guard_tracked_sources'), 16);
    assert.equal(sampleValue(text, 'nonstop_guard_tracker_evictions_total'), 4);
  });
});
