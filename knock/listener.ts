// Raw sockets on the diverted protocol numbers (see ruleset.ts): they receive knock SYNs and
// UDP knocks and nothing else, so ordinary traffic never wakes the daemon.
import raw, { type RawSocket } from 'raw-socket';
import type { KnockProtocol, KnockStep } from '../config/knock.js';
import { errors } from '../lib/errors.js';
import { readDatagram, readKnock } from './packet.js';

export type KnockHandler = (source: string, step: KnockStep) => void;
export type SpaHandler = (source: string, payload: Buffer) => void;

/** Where SPA datagrams go: the UDP port, and who reads them. */
export interface SpaPort {
  readonly port: number;
  readonly onPacket: SpaHandler;
}

/**
 * Bytes read per datagram. A knock needs its headers only; an SPA packet is at most 1500 bytes
 * of payload (fwknop's MAX_SPA_PACKET_LEN), so the UDP sockets read a whole Ethernet frame and
 * more: a longer one is cut short, fails the UDP length check and is counted malformed.
 */
const TCP_READ_BYTES = 256;
const UDP_READ_BYTES = 2048;

export class KnockListener {
  readonly #sockets: RawSocket[] = [];
  #received = 0;
  #malformed = 0;

  constructor(
    divert: { tcp: number; udp: number },
    onKnock: KnockHandler,
    onError: (err: Error) => void,
    spa?: SpaPort,
  ) {
    const open = (protocol: KnockProtocol, ipv4: boolean) => {
      let socket: RawSocket;
      try {
        socket = raw.createSocket({
          protocol: divert[protocol],
          addressFamily: ipv4 ? raw.AddressFamily.IPv4 : raw.AddressFamily.IPv6,
          bufferSize: protocol === 'udp' ? UDP_READ_BYTES : TCP_READ_BYTES,
        });
        socket.setOption(raw.SocketLevel.SOL_SOCKET, raw.SocketOption.SO_RCVBUF, 1 << 20);
      } catch (err) {
        this.close();
        throw errors.GUARD_SOCKET(
          `cannot open a raw socket for protocol ${divert[protocol]} (${(err as Error).message}); the guard needs root or CAP_NET_RAW`,
          undefined,
          { cause: err },
        );
      }
      socket.on('message', (buf, source) => {
        this.#received += 1;
        if (protocol === 'udp' && spa !== undefined) {
          const datagram = readDatagram(buf, ipv4);
          if (datagram?.port === spa.port) {
            spa.onPacket(source, datagram.payload);
            return;
          }
        }
        const step = readKnock(buf, ipv4, protocol);
        if (step === undefined) this.#malformed += 1;
        else onKnock(source, step);
      });
      socket.on('error', onError);
      this.#sockets.push(socket);
    };
    open('tcp', true);
    open('udp', true);
    open('tcp', false);
    open('udp', false);
  }

  get stats(): { received: number; malformed: number } {
    return { received: this.#received, malformed: this.#malformed };
  }

  close(): void {
    for (const s of this.#sockets.splice(0)) s.close();
  }
}
