// The ACME challenge answers a gateway can give: what it ordered itself, and what another gateway
// serving the same name ordered (relayed through the broker side), so that the CA may send its
// validation to any gateway behind the name.

/** One pending challenge's answer, as the ordering gateway publishes it. */
export interface ChallengeAnswer {
  readonly type: 'http-01' | 'tls-alpn-01';
  /** The identifier (DNS name) the challenge is for. */
  readonly identifier: string;
  readonly token: string;
  /** token + "." + base64url(JWK thumbprint of the account key) (RFC 8555, 8.1). */
  readonly keyAuthorization: string;
  /** Unix ms after which nobody answers it (and nothing keeps it). */
  readonly expiresAt: number;
}

/** Where challenge answers are published and looked up; the lookups are on the request path. */
export interface ChallengeStore {
  publish(answer: ChallengeAnswer): Promise<void>;
  withdraw(answer: ChallengeAnswer): Promise<void>;
  /** The key authorization for an HTTP-01 token, if any gateway published it and it is live. */
  httpAnswer(token: string): string | undefined | Promise<string | undefined>;
  /** The key authorization for a TLS-ALPN-01 challenge on this name, if live. */
  tlsAlpnAnswer(identifier: string): string | undefined | Promise<string | undefined>;
}

/** This gateway's own challenges only: enough for one gateway behind a name. */
export class LocalChallengeStore implements ChallengeStore {
  readonly #http = new Map<string, ChallengeAnswer>();
  readonly #tlsAlpn = new Map<string, ChallengeAnswer>();

  constructor(private readonly now: () => number = Date.now) {}

  publish(answer: ChallengeAnswer): Promise<void> {
    this.#mapFor(answer).set(this.#keyOf(answer), answer);
    return Promise.resolve();
  }

  withdraw(answer: ChallengeAnswer): Promise<void> {
    const map = this.#mapFor(answer);
    if (map.get(this.#keyOf(answer))?.token === answer.token) map.delete(this.#keyOf(answer));
    return Promise.resolve();
  }

  httpAnswer(token: string): string | undefined {
    return this.#live(this.#http, token);
  }

  tlsAlpnAnswer(identifier: string): string | undefined {
    return this.#live(this.#tlsAlpn, identifier.toLowerCase());
  }

  #mapFor(answer: ChallengeAnswer): Map<string, ChallengeAnswer> {
    return answer.type === 'http-01' ? this.#http : this.#tlsAlpn;
  }

  #keyOf(answer: ChallengeAnswer): string {
    return answer.type === 'http-01' ? answer.token : answer.identifier.toLowerCase();
  }

  #live(map: Map<string, ChallengeAnswer>, key: string): string | undefined {
    const answer = map.get(key);
    if (answer === undefined) return undefined;
    if (answer.expiresAt <= this.now()) {
      map.delete(key);
      return undefined;
    }
    return answer.keyAuthorization;
  }
}
