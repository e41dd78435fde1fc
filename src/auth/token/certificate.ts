/**
 * A minimal self-signed X.509 v3 certificate for a token signing key, so a
 * JWT can carry it in its `x5c` header and distribution 2.x, which checks an
 * x5c chain against its `rootcertbundle`, trusts Berth's tokens once the
 * operator hands it the certificate. The certificate is its own root:
 * CA:TRUE, keyUsage digitalSignature and keyCertSign, subject = issuer.
 */
import { randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { bitString, boolean, explicit, integer, nullValue, octetString, oid, sequence, set, time, utf8String } from './der.js';

const OID = {
  commonName: '2.5.4.3',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
};

export interface CertificateOptions {
  privateKey: KeyObject;
  publicKey: KeyObject;
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  /** Unsigned big-endian serial number; default 16 random bytes (positive). */
  serial?: Buffer;
}

function signatureAlgorithm(key: KeyObject): { algorithm: Buffer; hash: string } {
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    // RFC 5758 3.2: the ECDSA identifiers carry no parameters.
    return { algorithm: sequence(oid(OID.ecdsaWithSHA256)), hash: 'sha256' };
  }
  if (key.asymmetricKeyType === 'rsa') return { algorithm: sequence(oid(OID.sha256WithRSA), nullValue()), hash: 'sha256' };
  throw new Error(`cannot certify a ${key.asymmetricKeyType ?? 'unknown'} key (EC P-256 or RSA only)`);
}

function name(commonName: string): Buffer {
  return sequence(set(sequence(oid(OID.commonName), utf8String(commonName))));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(oid(id), boolean(critical), octetString(value));
}

/** The certificate, DER-encoded. */
export function selfSignedCertificate(opts: CertificateOptions): Buffer {
  const { algorithm, hash } = signatureAlgorithm(opts.privateKey);
  let serial = opts.serial ?? randomBytes(16);
  if (opts.serial === undefined) {
    // Positive and 16 bytes long (RFC 5280 4.1.2.2 allows up to 20 octets).
    serial = Buffer.from(serial);
    serial[0] = (serial[0]! & 0x7f) | 0x01;
  }
  const spki = opts.publicKey.export({ type: 'spki', format: 'der' });
  const extensions = sequence(
    extension(OID.basicConstraints, true, sequence(boolean(true))),
    // digitalSignature (bit 0) and keyCertSign (bit 5): 1000 0100, the last two bits unused.
    extension(OID.keyUsage, true, bitString(Buffer.from([0x84]), 2)),
  );
  const tbs = sequence(
    explicit(0, integer(2)),
    integer(serial),
    algorithm,
    name(opts.commonName),
    sequence(time(opts.notBefore), time(opts.notAfter)),
    name(opts.commonName),
    spki,
    explicit(3, extensions),
  );
  const signature = sign(hash, tbs, opts.privateKey); // DER signature for ECDSA, as X.509 wants
  return sequence(tbs, algorithm, bitString(signature));
}

export function toPem(der: Buffer): string {
  const b64 = der.toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** Every certificate in a PEM bundle (other blocks ignored, as distribution does). */
export function parsePemBundle(text: string): X509Certificate[] {
  const out: X509Certificate[] = [];
  const re = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push(new X509Certificate(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')));
  }
  return out;
}
