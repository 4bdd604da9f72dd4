// TLS-ALPN-01 (RFC 8737) on the HTTPS listener: a ClientHello offering ALPN "acme-tls/1" for a
// name with a live answer in the challenge store gets a self-signed certificate carrying the
// acmeIdentifier extension, and the connection is closed after the handshake. Every other
// handshake is left to the listener's own certificate and protocols.
//
// Node runs the ALPN callback, then the SNI callback, in the same synchronous step of one
// ClientHello: the ALPN callback notes that "acme-tls/1" was offered, the SNI callback (which
// may wait for the store and for key generation) picks the certificate.
import type { SecureContext, TLSSocket } from 'node:tls';
import { createSecureContext } from 'node:tls';
import acme, { type Authorization } from 'acme-client';
import type { Logger } from '../../lib/log.js';
import type { ChallengeStore } from './challenges.js';

export const ACME_TLS_PROTOCOL = 'acme-tls/1';

type SniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
type AlpnCallback = (arg: { servername: string; protocols: string[] }) => string | undefined;

/** Options for the HTTPS listener (`SNICallback`, `ALPNCallback`), and the listener's hook. */
export interface TlsAlpnHooks {
  readonly SNICallback: SniCallback;
  readonly ALPNCallback: AlpnCallback;
  /** Closes a validation connection once its handshake is done (it carries no request). */
  onSecureConnection(socket: TLSSocket): void;
}

/**
 * `protocols`: the listener's own ALPN protocols in order of preference (what it would have put
 * in `ALPNProtocols`, which Node does not take together with an ALPN callback).
 */
export class TlsAlpnResponder implements TlsAlpnHooks {
  /** The name of the ClientHello being handled, when it offered "acme-tls/1". */
  #offeredFor: string | undefined;
  /** One certificate per name and key authorization (the CA connects several times). */
  readonly #contexts = new Map<string, { keyAuthorization: string; context: Promise<SecureContext> }>();
  #key: Promise<Buffer> | undefined;

  constructor(
    private readonly store: ChallengeStore,
    private readonly log: Logger,
    private readonly protocols: readonly string[] = ['http/1.1'],
  ) {}

  readonly ALPNCallback: AlpnCallback = ({ servername, protocols }) => {
    this.#offeredFor = undefined;
    if (protocols.includes(ACME_TLS_PROTOCOL) && servername) {
      this.#offeredFor = servername.toLowerCase();
      return ACME_TLS_PROTOCOL;
    }
    return this.protocols.find((p) => protocols.includes(p));
  };

  readonly SNICallback: SniCallback = (servername, cb) => {
    const offered = this.#offeredFor;
    this.#offeredFor = undefined;
    const name = servername.toLowerCase();
    if (offered === undefined || offered !== name) {
      cb(null);
      return;
    }
    // "acme-tls/1" is for validation only (RFC 8737, 3): without an answer the handshake fails.
    this.#challengeContext(name).then(
      (context) => {
        if (context === undefined) {
          this.log.warn({ identifier: name }, 'tls-alpn-01 validation for a name without a live challenge');
          cb(new Error(`no tls-alpn-01 challenge is live for ${name}`));
        } else {
          cb(null, context);
        }
      },
      (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
    );
  };

  onSecureConnection(socket: TLSSocket): void {
    if (socket.alpnProtocol === ACME_TLS_PROTOCOL) socket.end();
  }

  async #challengeContext(identifier: string): Promise<SecureContext | undefined> {
    const keyAuthorization = await this.store.tlsAlpnAnswer(identifier);
    if (keyAuthorization === undefined) {
      this.#contexts.delete(identifier);
      return undefined;
    }
    const cached = this.#contexts.get(identifier);
    if (cached?.keyAuthorization === keyAuthorization) return cached.context;
    const context = this.#build(identifier, keyAuthorization);
    this.#contexts.set(identifier, { keyAuthorization, context });
    context.catch(() => this.#contexts.delete(identifier));
    return context;
  }

  async #build(identifier: string, keyAuthorization: string): Promise<SecureContext> {
    this.#key ??= acme.crypto.createPrivateEcdsaKey('P-256');
    const key = await this.#key;
    // Only the identifier of the authorization goes into the certificate.
    const authz: Authorization = {
      identifier: { type: 'dns', value: identifier },
      status: 'pending',
      expires: '',
      challenges: [],
      url: '',
    };
    const [, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, key);
    return createSecureContext({ key, cert });
  }
}
