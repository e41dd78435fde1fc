/**
 * The token service's signing keys. An ECDSA P-256 key is made at first
 * start and kept in the metadata database, so every replica signs and
 * verifies with the same keys; two processes starting at once agree on one
 * (insert if absent, then read back). Rotation adds a key that is published
 * at once (JWKS, certificate bundle) and signs from `activeAt` on, and older
 * keys keep verifying until retired. A key may also come from a PEM file:
 * its private half stays in the file, its certificate goes to the database
 * so every replica sends the same x5c.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import type { SigningKeyQueries, SigningKeyRecord } from '../../metadata/keys.js';
import { selfSignedCertificate, toPem } from './certificate.js';
import { jwkThumbprint, publicJwk, type PublicJwk } from './jwk.js';
import { algorithmFor } from './jwt.js';

export interface SigningKey {
  /** RFC 7638 thumbprint of the public key: the JWT's `kid`. */
  kid: string;
  algorithm: 'ES256' | 'RS256';
  publicKey: KeyObject;
  /** Null when this process cannot sign with the key (a file key another replica holds). */
  privateKey: KeyObject | null;
  certificate: X509Certificate;
  /** base64 DER of the certificate: the JWT's `x5c` entry. */
  x5c: string;
  createdAt: number;
  activeAt: number;
  retiredAt: number | null;
}

export interface KeyRingOptions {
  /** PEM text of a private key (EC P-256 or RSA) to sign with instead of the generated keys. */
  keyPem?: string;
  /** How often the keys are read again, so rotations and retirements on another replica are seen (default 60 s). */
  reloadIntervalMs?: number;
  /** For tests. */
  now?: () => number;
}

/** How long a new certificate is valid: keys are retired by the operator, not by the calendar. */
const CERTIFICATE_YEARS = 20;
/** Backdated so a verifier whose clock is behind still finds the certificate valid. */
const CERTIFICATE_BACKDATE_MS = 24 * 3600_000;

/** A key and its certificate, ready for the database. */
function prepare(privateKey: KeyObject, now: number): { kid: string; algorithm: 'ES256' | 'RS256'; certificate: string } {
  const publicKey = createPublicKey(privateKey);
  const kid = jwkThumbprint(publicKey);
  const algorithm = algorithmFor(privateKey);
  const der = selfSignedCertificate({
    privateKey,
    publicKey,
    commonName: `berth token signer ${kid}`,
    notBefore: new Date(now - CERTIFICATE_BACKDATE_MS),
    notAfter: new Date(now + CERTIFICATE_YEARS * 365.25 * 24 * 3600_000),
  });
  return { kid, algorithm, certificate: der.toString('base64') };
}

/**
 * A new P-256 key, made encoded and read back: the KeyObject then shares
 * nothing with node's key-generation job. On node 20 a job collected while
 * its key is being exported deadlocks the thread (the job's destructor waits
 * for the mutex the export holds; seen once as a hung test, in gdb).
 */
function generate(): KeyObject {
  const { privateKey } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    privateKeyEncoding: { format: 'der', type: 'pkcs8' },
    publicKeyEncoding: { format: 'der', type: 'spki' },
  });
  return createPrivateKey({ key: privateKey, format: 'der', type: 'pkcs8' });
}

export class KeyRing {
  private all: SigningKey[] = [];
  private loadedAt = 0;
  private reloading: Promise<void> | null = null;
  private invalidated: Promise<void> | null = null;
  private readonly now: () => number;
  private readonly reloadIntervalMs: number;
  private readonly fileKey: { kid: string; key: KeyObject } | null;

  private constructor(
    private readonly queries: SigningKeyQueries,
    opts: KeyRingOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.reloadIntervalMs = opts.reloadIntervalMs ?? 60_000;
    if (opts.keyPem !== undefined) {
      const key = createPrivateKey(opts.keyPem);
      algorithmFor(key);
      this.fileKey = { kid: jwkThumbprint(createPublicKey(key)), key };
    } else {
      this.fileKey = null;
    }
  }

  /** Loads the keys, making the first one (or recording the file key) when needed. */
  static async open(queries: SigningKeyQueries, opts: KeyRingOptions = {}): Promise<KeyRing> {
    const ring = new KeyRing(queries, opts);
    let records = await queries.list();
    if (records.length === 0) {
      const key = generate();
      const now = await queries.now();
      const prepared = prepare(key, now);
      await queries.insertFirst({ ...prepared, privateKey: key.export({ type: 'pkcs8', format: 'pem' }) as string, activeAt: now });
      records = await queries.list();
    }
    if (ring.fileKey && !records.some((r) => r.kid === ring.fileKey!.kid)) {
      const now = await queries.now();
      await queries.add({ ...prepare(ring.fileKey.key, now), privateKey: null, activeAt: now });
      records = await queries.list();
    }
    ring.install(records);
    return ring;
  }

  private install(records: SigningKeyRecord[]): void {
    this.all = records.map((r) => {
      const certificate = new X509Certificate(Buffer.from(r.certificate, 'base64'));
      let privateKey: KeyObject | null = r.privateKey === null ? null : createPrivateKey(r.privateKey);
      if (this.fileKey?.kid === r.kid) privateKey = this.fileKey.key;
      return {
        kid: r.kid,
        algorithm: r.algorithm as 'ES256' | 'RS256',
        publicKey: certificate.publicKey,
        privateKey,
        certificate,
        x5c: r.certificate,
        createdAt: r.createdAt,
        activeAt: r.activeAt,
        retiredAt: r.retiredAt,
      };
    });
    this.loadedAt = this.now();
  }

  /** Reads the keys again (once at a time). */
  reload(): Promise<void> {
    this.reloading ??= this.queries
      .list()
      .then((records) => this.install(records))
      .finally(() => {
        this.reloading = null;
      });
    return this.reloading;
  }

  /**
   * The keys changed elsewhere (a rotation or retirement on another
   * replica, told through the database): read them again now, and until that
   * read is done `isStale` holds and `current` is the read to wait for.
   */
  invalidate(): void {
    this.loadedAt = 0;
    // A read already under way may have begun before the change: read again after it.
    const read: Promise<void> = (this.reloading ?? Promise.resolve())
      .catch(() => {})
      .then(() => this.reload())
      .catch(() => {})
      .finally(() => {
        if (this.invalidated === read) this.invalidated = null;
      });
    this.invalidated = read;
  }

  /** The read `invalidate` started, while it runs (null otherwise). */
  current(): Promise<void> | null {
    return this.invalidated;
  }

  /** Whether the keys are older than the reload interval (or `maxAgeMs`). */
  isStale(maxAgeMs = this.reloadIntervalMs): boolean {
    return this.now() - this.loadedAt >= maxAgeMs;
  }

  /** Reloads when the keys are older than the reload interval (or `maxAgeMs`). */
  async fresh(maxAgeMs = this.reloadIntervalMs): Promise<void> {
    if (this.isStale(maxAgeMs)) await this.reload();
  }

  private live(k: SigningKey, now = this.now()): boolean {
    return k.retiredAt === null || k.retiredAt > now;
  }

  /** Keys that verify: every one not retired, newest first. */
  keys(): SigningKey[] {
    const now = this.now();
    return this.all.filter((k) => this.live(k, now)).reverse();
  }

  /** The key to sign with: the file key if there is one, else the newest active key this process holds. */
  signer(): SigningKey {
    const now = this.now();
    const usable = this.all.filter((k) => k.privateKey && this.live(k, now) && k.activeAt <= now);
    const chosen = usable.find((k) => k.kid === this.fileKey?.kid) ?? usable.at(-1);
    if (!chosen) throw new Error('no signing key is active (every key is retired or not yet active): add one');
    return chosen;
  }

  /** A verifying key by kid, or undefined (unknown or retired). */
  byKid(kid: string): SigningKey | undefined {
    const k = this.all.find((x) => x.kid === kid);
    return k && this.live(k) ? k : undefined;
  }

  /** The keys as a JWKS document (RFC 7517 5), for distribution 3's `auth.token.jwks` and other verifiers. */
  jwks(): { keys: PublicJwk[] } {
    return { keys: this.keys().map((k) => ({ ...publicJwk(k.publicKey), kid: k.kid, use: 'sig', alg: k.algorithm, x5c: [k.x5c] })) };
  }

  /** The certificates of every verifying key, PEM: what an operator gives distribution as `auth.token.rootcertbundle`. */
  certificateBundle(): string {
    return this.keys()
      .map((k) => toPem(k.certificate.raw))
      .join('');
  }

  /**
   * Adds a new generated key (rotation). It is published at once and signs
   * from `activateInMs` on (default 0: at once); give verifiers that trust
   * by certificate bundle time to receive the new bundle first.
   */
  async rotate(opts: { activateInMs?: number } = {}): Promise<SigningKey> {
    const key = generate();
    const now = await this.queries.now();
    const prepared = prepare(key, now);
    await this.queries.add({ ...prepared, privateKey: key.export({ type: 'pkcs8', format: 'pem' }) as string, activeAt: now + (opts.activateInMs ?? 0) });
    await this.reload();
    return this.all.find((k) => k.kid === prepared.kid)!;
  }

  /** Retires a key: tokens it signed stop verifying (on other replicas at their next reload). */
  async retire(kid: string): Promise<boolean> {
    const done = await this.queries.retire(kid);
    await this.reload();
    return done;
  }
}
