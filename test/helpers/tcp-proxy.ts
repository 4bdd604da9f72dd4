// A TCP proxy a test can cut, to make a backend (PostgreSQL, Redis) vanish mid-test without
// touching the real server, or make a link die while an answer is on its way.
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** Closes the listener and every proxied connection: the backend looks gone. */
  cut(): Promise<void>;
  /**
   * From now on what the backend sends is lost on the way, until reset(): a link that dies with
   * an answer in flight (the backend has sent it; the client never gets it).
   */
  swallowAnswers(): void;
  /** Drops every proxied connection and ends swallowAnswers(); new connections pass again. */
  reset(): void;
  /** Bytes the backend sent that were lost (swallowAnswers). */
  readonly swallowedBytes: number;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let swallowing = false;
  let swallowedBytes = 0;
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (swallowing) swallowedBytes += chunk.length;
      else client.write(chunk);
    });
    upstream.on('end', () => client.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address');
  return {
    port: address.port,
    cut: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
    swallowAnswers: () => {
      swallowing = true;
    },
    reset: () => {
      for (const s of sockets) s.destroy();
      swallowing = false;
    },
    get swallowedBytes() {
      return swallowedBytes;
    },
  };
}
