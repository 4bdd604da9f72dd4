// The gateway's own certificate from an ACME CA (RFC 8555): loaded from the state folder when it
// is still good, else ordered (HTTP-01 or TLS-ALPN-01 through the challenge store); renewed
// once `renewFraction` of its lifetime has passed; a failed order is logged with its code and
// retried with exponential, jittered backoff. Each new certificate goes to `onCertificate`
// (the HTTPS listener swaps its context; existing connections keep theirs).
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { Agent } from 'node:https';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import acme from 'acme-client';
import type { AcmeConfig } from '../../config/schemas/gateway.js';
import { errors, isNonstopError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import { writeAtomically } from '../../lib/write-atomically.js';
import type { ChallengeAnswer, ChallengeStore } from './challenges.js';
import { acmeProblems, classifyAcmeFailure, type AcmePhase } from './failures.js';

/** The certificate the HTTPS listener serves. */
export interface ServedCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly names: readonly string[];
  readonly issuer: string;
  /** Where it came from: this folder's ACME state, a fresh order, or the `cert`/`key` files. */
  readonly source: 'state' | 'order' | 'files';
}

export type CertificateReadiness = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface AcmeManagerOptions {
  readonly config: AcmeConfig;
  readonly store: ChallengeStore;
  readonly log: Logger;
  /** Called with each certificate to serve (from the state folder, an order or the files). */
  readonly onCertificate: (cert: ServedCertificate) => void;
  /** The `cert`/`key` files' contents, served until the first ACME certificate. */
  readonly fallback?: { readonly certPem: string; readonly keyPem: string };
  readonly now?: () => number;
  readonly random?: () => number;
}

/** setTimeout's limit (about 24.8 days); longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long a published answer stays live if it is never withdrawn. */
const ANSWER_LIFETIME_MS = 30 * 60_000;

export class AcmeManager {
  readonly #config: AcmeConfig;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #files: { account: string; accountUrl: string; cert: string; key: string };
  #served: ServedCertificate | undefined;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(private readonly options: AcmeManagerOptions) {
    this.#config = options.config;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#random = options.random ?? Math.random;
    const dir = this.#config.stateDir;
    this.#files = {
      account: join(dir, 'account.key'),
      accountUrl: join(dir, 'account.json'),
      cert: join(dir, 'cert.pem'),
      key: join(dir, 'key.pem'),
    };
    configureHttp(this.#config.caFile, this.#log);
  }

  /** Serves what the state folder (or the fallback files) holds, and schedules the next order. */
  start(): void {
    prepareStateDir(this.#config.stateDir);
    const saved = this.#loadSaved();
    if (saved !== undefined) this.#serve(saved);
    else if (this.options.fallback !== undefined) {
      const fallback = readCertificate(this.options.fallback.certPem, this.options.fallback.keyPem, 'files');
      this.#serve(fallback);
    }
    this.#schedule(saved === undefined ? 0 : this.#renewAt(saved) - this.#now());
  }

  get certificate(): ServedCertificate | undefined {
    return this.#served;
  }

  /** Ready while a certificate is served and has not expired. */
  readiness(): CertificateReadiness {
    const served = this.#served;
    if (served === undefined) return { ok: false, reason: 'no certificate yet (ACME order pending)' };
    if (served.notAfter.getTime() <= this.#now()) {
      return { ok: false, reason: `certificate expired at ${served.notAfter.toISOString()}` };
    }
    return { ok: true };
  }

  /** Orders now (whatever the schedule says); resolves when this attempt is over. */
  renewNow(): Promise<void> {
    clearTimeout(this.#timer);
    return this.#attempt();
  }

  /** No more orders; one under way is left to finish and its result is dropped. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => undefined);
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(delayMs, MAX_TIMER_MS));
    this.#timer = setTimeout(() => {
      const due = this.#served?.source === 'files' || this.#served === undefined || this.#failures > 0;
      if (!due && this.#renewAt(this.#served!) > this.#now()) {
        this.#schedule(this.#renewAt(this.#served!) - this.#now());
        return;
      }
      void this.#attempt();
    }, wait);
    this.#timer.unref();
  }

  #attempt(): Promise<void> {
    this.#running ??= this.#order()
      .then((cert) => {
        this.#failures = 0;
        if (this.#stopped) return;
        this.#serve(cert);
        this.#schedule(this.#renewAt(cert) - this.#now());
      })
      .catch((err: unknown) => {
        if (this.#stopped) return;
        this.#failures += 1;
        const delay = this.#backoff(this.#failures);
        const failure = isNonstopError(err)
          ? err
          : errors.ACME_ORDER_FAILED(`serving the new certificate failed: ${String(err)}`, undefined, {
              cause: err,
            });
        // The CA forgot the account (a reset staging CA): the next attempt makes a new one.
        if (JSON.stringify(failure.details ?? {}).includes(':accountDoesNotExist')) {
          rmSync(this.#files.accountUrl, { force: true });
        }
        this.#log.error(
          {
            code: failure.code,
            err: failure.message,
            ...(failure.details === undefined ? {} : { details: failure.details }),
            domains: this.#config.domains,
            attempt: this.#failures,
            retryInMs: delay,
            readiness: this.readiness(),
          },
          'ACME order failed; retrying',
        );
        this.#schedule(delay);
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  /** min·2^(n-1) capped at max, minus a random share of up to `jitter` of it. */
  #backoff(failures: number): number {
    const { retryMinMs, retryMaxMs, jitter } = this.#config;
    const base = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(failures - 1, 40));
    return Math.round(base * (1 - jitter * this.#random()));
  }

  #renewAt(cert: ServedCertificate): number {
    const from = cert.notBefore.getTime();
    return from + (cert.notAfter.getTime() - from) * this.#config.renewFraction;
  }

  #serve(cert: ServedCertificate): void {
    this.#served = cert;
    this.#log.info(
      {
        names: cert.names,
        issuer: cert.issuer,
        notAfter: cert.notAfter.toISOString(),
        renewAt: new Date(this.#renewAt(cert)).toISOString(),
        source: cert.source,
      },
      'serving TLS certificate',
    );
    this.options.onCertificate(cert);
  }

  /** The saved certificate, when it is there, matches its key, names every domain and is unexpired. */
  #loadSaved(): ServedCertificate | undefined {
    if (!existsSync(this.#files.cert) || !existsSync(this.#files.key)) return undefined;
    try {
      const cert = readCertificate(
        readFileSync(this.#files.cert, 'utf8'),
        readFileSync(this.#files.key, 'utf8'),
        'state',
      );
      const missing = this.#config.domains.filter((d) => !cert.names.includes(d));
      if (missing.length > 0) {
        this.#log.info({ missing }, 'saved ACME certificate lacks configured names; ordering a new one');
        return undefined;
      }
      if (cert.notAfter.getTime() <= this.#now()) return undefined;
      return cert;
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'saved ACME certificate unusable; ordering a new one');
      return undefined;
    }
  }

  /** One order from account to certificate; rejects with a classified NonstopError. */
  async #order(): Promise<ServedCertificate> {
    let phase: AcmePhase = 'account';
    const { problems, run } = acmeProblems();
    this.#log.info(
      { domains: this.#config.domains, directoryUrl: this.#config.directoryUrl },
      'ordering a certificate',
    );
    try {
      return await run(async () => {
        const client = await this.#client();
        phase = 'order';
        const order = await client.createOrder({
          identifiers: this.#config.domains.map((value) => ({ type: 'dns', value })),
        });
        const authorizations = await client.getAuthorizations(order);
        phase = 'challenge';
        await Promise.all(
          authorizations
            .filter((authz) => authz.status !== 'valid')
            .map((authz) => this.#validate(client, authz)),
        );
        phase = 'finalize';
        const key = await acme.crypto.createPrivateEcdsaKey('P-256');
        const [, csr] = await acme.crypto.createCsr(
          { commonName: this.#config.domains[0]!, altNames: [...this.#config.domains] },
          key,
        );
        const finalized = await client.finalizeOrder(order, csr);
        const chain = await client.getCertificate(finalized);
        const cert = readCertificate(chain, key.toString(), 'order');
        writeAtomically(this.#files.key, key.toString(), 0o600);
        writeAtomically(this.#files.cert, chain, 0o600);
        return cert;
      });
    } catch (err) {
      throw classifyAcmeFailure(err, problems, phase);
    }
  }

  async #validate(client: acme.Client, authz: acme.Authorization): Promise<void> {
    const identifier = authz.identifier.value.toLowerCase();
    const challenge = this.#config.challenges
      .map((type) => authz.challenges.find((c) => c.type === type))
      .find((c) => c !== undefined);
    if (challenge === undefined) {
      throw errors.ACME_CHALLENGE_FAILED(
        `the CA offers none of the challenge types ${this.#config.challenges.join(', ')} for ${identifier}`,
      );
    }
    const answer: ChallengeAnswer = {
      type: challenge.type as ChallengeAnswer['type'],
      identifier,
      token: challenge.token,
      keyAuthorization: await client.getChallengeKeyAuthorization(challenge),
      expiresAt: this.#now() + ANSWER_LIFETIME_MS,
    };
    await this.options.store.publish(answer);
    try {
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(challenge);
    } finally {
      await this.options.store.withdraw(answer);
    }
  }

  /**
   * A client on this gateway's account: created once, its URL kept in the state folder (asking
   * for an existing account again makes acme-client update it, which some CAs refuse).
   */
  async #client(): Promise<acme.Client> {
    const accountKey = await this.#accountKey();
    const known = this.#knownAccountUrl();
    const client = new acme.Client({
      directoryUrl: this.#config.directoryUrl,
      accountKey,
      ...(known === '' ? {} : { accountUrl: known }),
      backoffAttempts: 10,
      backoffMin: 500,
      backoffMax: 5000,
    });
    if (known === '') {
      await client.createAccount({
        termsOfServiceAgreed: true,
        ...(this.#config.email === undefined ? {} : { contact: [`mailto:${this.#config.email}`] }),
      });
      const saved = { directoryUrl: this.#config.directoryUrl, accountUrl: client.getAccountUrl() };
      writeAtomically(this.#files.accountUrl, `${JSON.stringify(saved)}\n`, 0o600);
      this.#log.info({ account: client.getAccountUrl() }, 'ACME account created');
    }
    return client;
  }

  /** The saved account URL, when it is this directory's ('' otherwise). */
  #knownAccountUrl(): string {
    if (!existsSync(this.#files.accountUrl)) return '';
    try {
      const saved = JSON.parse(readFileSync(this.#files.accountUrl, 'utf8')) as unknown;
      if (typeof saved !== 'object' || saved === null) return '';
      const { directoryUrl, accountUrl } = saved as { directoryUrl?: unknown; accountUrl?: unknown };
      return directoryUrl === this.#config.directoryUrl && typeof accountUrl === 'string' ? accountUrl : '';
    } catch {
      return '';
    }
  }

  /** The account key: made once, kept 0600 in the state folder. */
  async #accountKey(): Promise<string> {
    if (existsSync(this.#files.account)) return readFileSync(this.#files.account, 'utf8');
    const key = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
    writeAtomically(this.#files.account, key, 0o600);
    this.#log.info({ file: this.#files.account }, 'ACME account key created');
    return key;
  }
}

export function readCertificate(
  certPem: string,
  keyPem: string,
  source: ServedCertificate['source'],
): ServedCertificate {
  const x509 = new X509Certificate(certPem);
  if (!x509.checkPrivateKey(createPrivateKey(keyPem)))
    throw new Error('the certificate does not match its key');
  const names = (x509.subjectAltName ?? '')
    .split(', ')
    .filter((n) => n.startsWith('DNS:'))
    .map((n) => n.slice(4).toLowerCase());
  return {
    certPem,
    keyPem,
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    names,
    issuer: x509.issuer,
    source,
  };
}

/** Creates the state folder 0700 (or tightens it); refuses one that is another user's. */
function prepareStateDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    if (!st.isDirectory()) throw new Error('not a folder');
    if (process.getuid !== undefined && st.uid !== process.getuid())
      throw new Error(`owned by uid ${st.uid}`);
    if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  } catch (err) {
    throw errors.ACME_STATE_INVALID(`${dir}: ${(err as Error).message}`, undefined, { cause: err });
  }
}

/**
 * acme-client's one HTTP client, set once for this process: the CA's own HTTPS may be signed
 * by `caFile` (besides the system's roots), and its retries are off, since the manager retries
 * whole orders itself with backoff and logs each failure.
 */
function configureHttp(caFile: string | undefined, log: Logger): void {
  acme.setLogger((line) => log.trace({ acme: line }, 'acme-client'));
  const defaults = acme.axios.defaults as typeof acme.axios.defaults & {
    acmeSettings: { retryMaxAttempts: number };
  };
  defaults.acmeSettings.retryMaxAttempts = 0;
  acme.axios.defaults.timeout = 30_000;
  if (caFile !== undefined) {
    acme.axios.defaults.httpsAgent = new Agent({ ca: [...rootCertificates, readFileSync(caFile, 'utf8')] });
  }
}
