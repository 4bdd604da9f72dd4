// Types for the parts of `raw-socket` (a native addon without its own types) that nonstop uses.
declare module 'raw-socket' {
  import type { EventEmitter } from 'node:events';

  export interface RawSocket extends EventEmitter {
    on(event: 'message', listener: (buffer: Buffer, source: string) => void): this;
    on(event: 'error', listener: (error: Error) => void): this;
    on(event: 'close', listener: () => void): this;
    close(): this;
    setOption(level: number, option: number, value: number): this;
    send(
      buffer: Buffer,
      offset: number,
      length: number,
      address: string,
      beforeCallback: (() => void) | null,
      afterCallback: (error: Error | null, bytes: number) => void,
    ): this;
    pauseRecv(): this;
    resumeRecv(): this;
  }

  interface RawSocketModule {
    createSocket(options: { protocol?: number; addressFamily?: number; bufferSize?: number }): RawSocket;
    AddressFamily: { IPv4: number; IPv6: number };
    Protocol: { None: number; TCP: number; UDP: number };
    SocketLevel: { SOL_SOCKET: number; IPPROTO_IP: number; IPPROTO_IPV6: number };
    SocketOption: { SO_RCVBUF: number; IP_HDRINCL: number };
  }
  const raw: RawSocketModule;
  export default raw;
}
