import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureTool, run } from '../../../test/support/tools.js';
import { parsePemBundle, selfSignedCertificate, toPem } from './certificate.js';

const notBefore = new Date(Date.UTC(2024, 0, 1));
const notAfter = new Date(Date.UTC(2054, 0, 1));

describe('self-signed certificate', () => {
  it('parses back with node: version 3, CA, self-issued, signature valid, the key and dates given', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = selfSignedCertificate({ privateKey, publicKey, commonName: 'berth token signer test', notBefore, notAfter, serial: Buffer.from('0102ff', 'hex') });
    const cert = new X509Certificate(der);
    assert.equal(cert.subject, 'CN=berth token signer test');
    assert.equal(cert.issuer, cert.subject);
    assert.equal(cert.ca, true);
    assert.equal(cert.serialNumber.toUpperCase(), '0102FF');
    assert.equal(cert.checkIssued(cert), true);
    assert.equal(cert.verify(publicKey), true);
    assert.ok(cert.publicKey.equals(publicKey));
    assert.equal(new Date(cert.validFrom).getTime(), notBefore.getTime());
    assert.equal(new Date(cert.validTo).getTime(), notAfter.getTime(), 'GeneralizedTime after 2049');
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    assert.equal(cert.verify(other.publicKey), false);
  });

  it('a flipped byte in the signed part breaks the signature', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = selfSignedCertificate({ privateKey, publicKey, commonName: 'tamper', notBefore, notAfter });
    const at = der.indexOf(Buffer.from('tamper'));
    const bad = Buffer.from(der);
    bad[at] = 'T'.charCodeAt(0);
    assert.equal(new X509Certificate(bad).verify(publicKey), false);
  });

  it('random serials are positive and differ', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const a = new X509Certificate(selfSignedCertificate({ privateKey, publicKey, commonName: 'a', notBefore, notAfter }));
    const b = new X509Certificate(selfSignedCertificate({ privateKey, publicKey, commonName: 'a', notBefore, notAfter }));
    assert.notEqual(a.serialNumber, b.serialNumber);
    assert.ok(Number.parseInt(a.serialNumber.slice(0, 2), 16) < 0x80);
  });

  it('openssl reads it: v3, ecdsa-with-SHA256, critical CA:TRUE, Digital Signature and Certificate Sign; and verifies it as its own root', async () => {
    const openssl = await ensureTool('openssl');
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-cert-'));
    try {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const der = selfSignedCertificate({ privateKey, publicKey, commonName: 'berth token signer openssl', notBefore: new Date(Date.now() - 60_000), notAfter });
      const file = path.join(dir, 'cert.pem');
      await writeFile(file, toPem(der));
      const text = (await run(openssl, ['x509', '-in', file, '-noout', '-text'])).stdout;
      assert.match(text, /Version: 3 \(0x2\)/);
      assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
      assert.match(text, /Issuer: CN\s?=\s?berth token signer openssl/);
      assert.match(text, /Subject: CN\s?=\s?berth token signer openssl/);
      assert.match(text, /ASN1 OID: prime256v1/);
      assert.match(text, /X509v3 Basic Constraints: critical\s+CA:TRUE/);
      assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Certificate Sign/);
      const verified = await run(openssl, ['verify', '-CAfile', file, file]);
      assert.match(verified.stdout, /: OK/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('certifies RSA keys with sha256WithRSAEncryption', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const cert = new X509Certificate(selfSignedCertificate({ privateKey, publicKey, commonName: 'rsa', notBefore, notAfter }));
    assert.equal(cert.verify(publicKey), true);
    const openssl = await ensureTool('openssl');
    const dir = await mkdtemp(path.join(tmpdir(), 'berth-cert-'));
    try {
      await writeFile(path.join(dir, 'c.pem'), cert.toString());
      assert.match((await run(openssl, ['x509', '-in', path.join(dir, 'c.pem'), '-noout', '-text'])).stdout, /sha256WithRSAEncryption/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses keys it cannot certify', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    assert.throws(() => selfSignedCertificate({ privateKey, publicKey, commonName: 'x', notBefore, notAfter }), /EC P-256 or RSA/);
  });

  it('PEM round trip and bundles of several certificates', () => {
    const keys = [0, 1].map(() => generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    const ders = keys.map((k, i) => selfSignedCertificate({ ...k, commonName: `k${i}`, notBefore, notAfter }));
    const bundle = `junk\n${toPem(ders[0]!)}-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n${toPem(ders[1]!)}`;
    const parsed = parsePemBundle(bundle);
    assert.deepEqual(parsed.map((c) => c.subject), ['CN=k0', 'CN=k1']);
    assert.ok(parsed[0]!.raw.equals(ders[0]!));
    assert.ok(toPem(ders[0]!).split('\n').every((l) => l.length <= 64));
  });
});
