// A compromised gateway's sshd, in process on a loopback port: ssh2's Server, which accepts
// the broker's key and its remote forward like OpenSSH would, and then lets a test do what a
// modified sshd can: open forwarded channels without end, and send data past the window the
// broker advertised.
import { writeFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { timingSafeEqual } from 'node:crypto';
import ssh2 from 'ssh2';
import { sshFingerprint } from '../../broker/tunnel.js';
import type { GatewaySsh } from '../../config/schemas/broker.js';

/** What ssh2 keeps about the window on each side of a channel (not in its type definitions). */
interface ChannelInternals {
  readonly outgoing: { window: number; packetSize: number };
  readonly _client: { readonly _sock: Socket };
}

export interface ForwardedSession {
  readonly conn: ssh2.Connection;
  readonly bindAddr: string;
  readonly bindPort: number;
  /** True once the broker (or the test) dropped this SSH connection. */
  readonly closed: boolean;
  readonly whenClosed: Promise<void>;
}

export interface HostileGateway {
  /** The `ssh` section a broker needs to tunnel to this gateway. */
  readonly ssh: GatewaySsh;
  /** SSH connections the broker made so far. */
  readonly connections: number;
  /** The next session whose remote forward was accepted (the current one if there is one). */
  session(): Promise<ForwardedSession>;
  /** Opens one forwarded-tcpip channel to the broker: resolves with it, or rejects when refused. */
  openChannel(session: ForwardedSession): Promise<ssh2.ServerChannel>;
  /**
   * Sends `bytes` on a channel as if the broker's window had no end: packets of `chunk`
   * bytes (not a divisor of the window, so ssh2's own "window is exactly 0" check never
   * fires). Resolves with the bytes sent once everything was handed to the socket, or once
   * the broker closed the channel.
   */
  overshoot(channel: ssh2.ServerChannel, bytes: number, chunk?: number): Promise<number>;
  /**
   * Sends up to `bytes` on a channel within the broker's window, as an honest sshd would:
   * stops when the broker has not widened the window for `stallMs`. Resolves with the bytes
   * handed to the channel.
   */
  sendWithinWindow(channel: ssh2.ServerChannel, bytes: number, stallMs?: number): Promise<number>;
  /** Never widens the window it gave the broker on this channel, and drops what arrives. */
  withholdWindow(channel: ssh2.ServerChannel): void;
}

export async function startHostileGateway(
  t: TestContext,
  dir: string,
  user = 'nonstop-tunnel',
): Promise<HostileGateway> {
  const hostKey = ed25519KeyPair();
  const brokerKey = ed25519KeyPair();
  const privateKey = join(dir, 'broker_ed25519');
  writeFileSync(privateKey, brokerKey.private, { mode: 0o600 });
  const brokerPublic = brokerKey.parsedPublic;
  const hostPublic = hostKey.parsedPublic;

  let connections = 0;
  let current: ForwardedSession | undefined;
  let waiters: ((s: ForwardedSession) => void)[] = [];
  const conns = new Set<ssh2.Connection>();

  const server = new ssh2.Server({ hostKeys: [hostKey.private] }, (conn) => {
    connections += 1;
    conns.add(conn);
    conn.on('error', () => {});
    conn.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || ctx.username !== user) return ctx.reject(['publickey']);
      const offered = ctx.key.data;
      const ours = brokerPublic.getPublicSSH();
      if (offered.length !== ours.length || !timingSafeEqual(offered, ours)) return ctx.reject(['publickey']);
      if (ctx.signature === undefined) return ctx.accept();
      if (brokerPublic.verify(ctx.blob ?? Buffer.alloc(0), ctx.signature, ctx.hashAlgo) === true)
        return ctx.accept();
      ctx.reject(['publickey']);
    });
    conn.on('request', (accept, reject, name, info) => {
      if (name !== 'tcpip-forward' || accept === undefined) return reject?.();
      accept();
      let closed = false;
      const whenClosed = new Promise<void>((resolve) =>
        conn.once('close', () => {
          closed = true;
          resolve();
        }),
      );
      const session: ForwardedSession = {
        conn,
        bindAddr: info.bindAddr,
        bindPort: info.bindPort,
        get closed() {
          return closed;
        },
        whenClosed,
      };
      current = session;
      for (const w of waiters) w(session);
      waiters = [];
    });
    conn.on('close', () => conns.delete(conn));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const c of conns) c.end();
    await new Promise((r) => server.close(r));
  });
  const { port } = server.address() as AddressInfo;
  let nextSourcePort = 40000;

  return {
    ssh: {
      host: '127.0.0.1',
      port,
      user,
      hostKeyFingerprint: sshFingerprint(hostPublic.getPublicSSH()),
      privateKey,
      remotePort: 7001,
    },
    get connections() {
      return connections;
    },
    session() {
      if (current !== undefined && !current.closed) return Promise.resolve(current);
      return new Promise((resolve) => waiters.push(resolve));
    },
    openChannel(session) {
      return new Promise((resolve, reject) => {
        nextSourcePort = nextSourcePort >= 65000 ? 40000 : nextSourcePort + 1;
        session.conn.forwardOut(
          session.bindAddr,
          session.bindPort,
          '198.51.100.7',
          nextSourcePort,
          (err, ch) => (err ? reject(err) : resolve(ch)),
        );
      });
    },
    async overshoot(channel, bytes, chunk = 30000) {
      channel.resume();
      const windows = channel as unknown as ChannelInternals;
      const sock = windows._client._sock;
      // What a modified sshd does: forget the broker's window.
      windows.outgoing.window = Number.MAX_SAFE_INTEGER;
      const data = Buffer.alloc(chunk, 0x2a);
      let closed = false;
      const onClose = new Promise<void>((resolve) =>
        channel.once('close', () => {
          closed = true;
          resolve();
        }),
      );
      let sent = 0;
      while (sent < bytes && !closed) {
        windows.outgoing.window = Number.MAX_SAFE_INTEGER;
        channel.write(data);
        sent += chunk;
        // Wait for our own socket to take it, so that this side buffers (almost) nothing.
        if (sock.writableLength > 256 * 1024) {
          await Promise.race([new Promise((r) => sock.once('drain', r)), onClose]);
        }
        await new Promise<void>((r) => setImmediate(r));
      }
      return sent;
    },
    async sendWithinWindow(channel, bytes, stallMs = 1000) {
      channel.resume();
      // One buffer, written again and again: what waits on this side is references to it.
      const data = Buffer.alloc(32 * 1024, 0x2b);
      let sent = 0;
      while (sent < bytes) {
        sent += data.length;
        if (channel.write(data)) continue;
        const drained = await Promise.race([
          new Promise<boolean>((r) => channel.once('drain', () => r(true))),
          new Promise<boolean>((r) => setTimeout(() => r(false), stallMs)),
        ]);
        if (!drained) break;
      }
      return sent;
    },
    withholdWindow(channel) {
      // ssh2 widens a window only after a push() that returned true, or a read: report every
      // push as not taken, and keep nothing.
      const internals = channel as unknown as { push: (chunk: Buffer | null) => boolean };
      const push = internals.push.bind(channel);
      internals.push = (chunk) => (chunk === null ? push(null) : false);
    },
  };
}

/**
 * An Ed25519 key pair ssh2 can read back. ssh2's generator writes a public key that starts
 * with a zero byte as 31 bytes instead of 32 (one key in 256), then refuses its own output
 * as malformed: such a pair is drawn again.
 */
function ed25519KeyPair(): { public: string; private: string; parsedPublic: ssh2.ParsedKey } {
  for (let tries = 0; tries < 64; tries++) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519');
    const parsedPublic = ssh2.utils.parseKey(pair.public);
    if (parsedPublic instanceof Error || ssh2.utils.parseKey(pair.private) instanceof Error) continue;
    return { ...pair, parsedPublic };
  }
  throw new Error('ssh2 produced 64 unreadable Ed25519 key pairs in a row');
}
