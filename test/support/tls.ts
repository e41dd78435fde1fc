/**
 * A throwaway certificate authority for TLS tests, made with the `openssl`
 * CLI: a CA, server certificates for loopback (IP SAN 127.0.0.1 and DNS
 * localhost) and client certificates for mutual TLS. EC P-256 keys keep it
 * fast; everything lives in one directory the caller removes.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureTool, run } from './tools.js';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface TestCA extends KeyPair {
  dir: string;
  /**
   * Issues a certificate for 127.0.0.1 / localhost with serverAuth usage;
   * `extraIPs` are added to its subject alternative names.
   */
  serverCert(name: string, extraIPs?: readonly string[]): Promise<KeyPair>;
  /** Issues a certificate with clientAuth usage, subject CN=`name`. */
  clientCert(name: string): Promise<KeyPair>;
  /**
   * A directory holding the CA as `ca.crt`: the layout containers/image
   * (skopeo, podman) reads with --cert-dir or from /etc/containers/certs.d/<host>/.
   */
  certDir(): Promise<string>;
}

/** PEM files read into memory, for node:https / node:tls options. */
export async function readPair(p: KeyPair): Promise<{ cert: Buffer; key: Buffer }> {
  const [cert, key] = await Promise.all([readFile(p.cert), readFile(p.key)]);
  return { cert, key };
}

const KEY_ARGS = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** Creates a CA named `name` in `dir` (created if missing). */
export async function createCA(dir: string, name = 'Berth Test CA'): Promise<TestCA> {
  const openssl = await ensureTool('openssl');
  await mkdir(dir, { recursive: true });
  const ca: KeyPair = { cert: path.join(dir, 'ca.crt'), key: path.join(dir, 'ca.key') };
  await run(openssl, [
    'req', '-x509', ...KEY_ARGS, '-keyout', ca.key, '-out', ca.cert, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  let serial = 1;

  async function issue(base: string, subject: string, extensions: string): Promise<KeyPair> {
    const pair: KeyPair = { cert: path.join(dir, `${base}.crt`), key: path.join(dir, `${base}.key`) };
    const csr = path.join(dir, `${base}.csr`);
    const ext = path.join(dir, `${base}.ext`);
    await writeFile(ext, extensions);
    await run(openssl, ['req', '-new', ...KEY_ARGS, '-keyout', pair.key, '-out', csr, '-subj', subject]);
    await run(openssl, [
      'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(Date.now() * 100 + serial++),
      '-days', '2', '-sha256', '-extfile', ext, '-out', pair.cert,
    ]);
    return pair;
  }

  return {
    ...ca,
    dir,
    serverCert: (base, extraIPs = []) =>
      issue(
        base,
        '/CN=127.0.0.1',
        'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' +
          `subjectAltName=${['IP:127.0.0.1', 'DNS:localhost', ...extraIPs.map((ip) => `IP:${ip}`)].join(',')}\n`,
      ),
    clientCert: (base) =>
      issue(base, `/CN=${base}`, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'),
    async certDir() {
      const certs = path.join(dir, 'certs.d');
      await mkdir(certs, { recursive: true });
      await writeFile(path.join(certs, 'ca.crt'), await readFile(ca.cert));
      return certs;
    },
  };
}
