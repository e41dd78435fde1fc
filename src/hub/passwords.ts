/**
 * Password hashing: scrypt (memory-hard) from node:crypto, run on libuv's
 * thread pool so a login does not stall the event loop. Stored as a
 * PHC-like string `$scrypt$ln=15,r=8,p=1$SALT$HASH` (unpadded base64), so
 * the parameters can be raised later and old hashes still verify. bcrypt
 * hashes imported from an htpasswd file verify too, and are replaced by
 * scrypt at the next successful login (needsRehash).
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';

const LN = 15;
const R = 8;
const P = 1;
const KEY_LENGTH = 64;
const SALT_LENGTH = 16;

function derive(password: string, salt: Buffer, ln: number, r: number, p: number, length: number): Promise<Buffer> {
  // 128·N·r bytes: 32 MiB at the defaults, which is exactly node's default maxmem; leave room.
  const maxmem = 256 * 2 ** ln * r + 1024 * 1024;
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, length, { N: 2 ** ln, r, p, maxmem }, (err, key) => (err ? reject(err) : resolve(key))));
}

const b64 = (b: Buffer) => b.toString('base64').replace(/=+$/, '');

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await derive(password, salt, LN, R, P, KEY_LENGTH);
  return `$scrypt$ln=${LN},r=${R},p=${P}$${b64(salt)}$${b64(key)}`;
}

const SCRYPT = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/;
const BCRYPT = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;

export function isBcrypt(hash: string): boolean {
  return BCRYPT.test(hash);
}

/** Whether `password` matches `hash` (scrypt or bcrypt); false for any hash it does not understand. */
export async function verifyPassword(password: string, hash: string): Promise<boolean> {
  const m = SCRYPT.exec(hash);
  if (m) {
    const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
    if (ln < 10 || ln > 20 || r < 1 || p < 1 || p > 16) return false;
    const expected = Buffer.from(m[5]!, 'base64');
    if (expected.length < 16) return false;
    const key = await derive(password, Buffer.from(m[4]!, 'base64'), ln, r, p, expected.length);
    return timingSafeEqual(key, expected);
  }
  if (isBcrypt(hash)) return bcrypt.compare(password, hash);
  return false;
}

/** True for a hash that is not scrypt at today's parameters (bcrypt, or weaker scrypt). */
export function needsRehash(hash: string): boolean {
  const m = SCRYPT.exec(hash);
  return !m || Number(m[1]) !== LN || Number(m[2]) !== R || Number(m[3]) !== P;
}

let dummy: Promise<string> | undefined;
/**
 * Spends the time of a real password check on nothing: for a login with an
 * unknown name, so that the answer's timing does not tell which names exist.
 */
export async function dummyVerify(password: string): Promise<false> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'));
  await verifyPassword(password, await dummy);
  return false;
}
