import { randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';

/**
 * Password hashing with scrypt (RFC 7914). Parameters: N = 2^15, r = 8, p = 1
 * (128·N·r = 32 MiB and tens of milliseconds per hash, OWASP's scrypt
 * baseline), a 16-byte random salt and a 32-byte key. Stored as
 * `scrypt$N$r$p$<salt b64>$<key b64>` so parameters can grow without a
 * migration: verification reads them from the stored string.
 */
const N = 2 ** 15;
const R = 8;
const P = 1;
const KEY_LEN = 32;
const SALT_LEN = 16;

/** Most memory (128·N·r bytes) a stored hash may ask for; refuses absurd or tampered parameters. */
const MAX_MEMORY = 256 * 1024 * 1024;

interface Params {
  n: number;
  r: number;
  p: number;
}

function scrypt(password: string, salt: Buffer, keylen: number, { n, r, p }: Params): Promise<Buffer> {
  // Node's default maxmem (32 MiB) is exactly our N·r, which OpenSSL exceeds by
  // its block buffers: allow twice the working set.
  const opts = { N: n, r, p, maxmem: 2 * 128 * n * r + 128 * r * p };
  // NIST SP 800-63B §5.1.1.2: normalise Unicode so the same password typed on another keyboard matches.
  const input = password.normalize('NFKC');
  return new Promise((resolve, reject) => scryptCb(input, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_LEN);
  const key = await scrypt(password, salt, KEY_LEN, { n: N, r: R, p: P });
  return ['scrypt', N, R, P, salt.toString('base64'), key.toString('base64')].join('$');
}

/** Parameters a stored hash may use: N a power of two above 1 (RFC 7914 §2), bounded memory and work. */
function validParams(n: number, r: number, p: number): boolean {
  if (![n, r, p].every((x) => Number.isSafeInteger(x) && x > 0)) return false;
  return n > 1 && (n & (n - 1)) === 0 && n <= 2 ** 24 && r <= 32 && p <= 16 && 128 * n * r <= MAX_MEMORY;
}

/** True when `password` matches `stored`; false (never a throw) for malformed or tampered hashes. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (!validParams(n, r, p)) return false;
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (salt.length < 8 || expected.length < 16 || expected.length > 64) return false;
  const actual = await scrypt(password, salt, expected.length, { n, r, p });
  return timingSafeEqual(actual, expected);
}

/**
 * Spend the time of one verification and answer false: for unknown emails, so
 * a wrong email and a wrong password take as long (no account enumeration by
 * timing, OWASP Authentication Cheat Sheet). Uses the current parameters, so it
 * stays as costly as a real check when they change.
 */
export async function verifyNothing(password: string): Promise<false> {
  await scrypt(password, Buffer.alloc(SALT_LEN), KEY_LEN, { n: N, r: R, p: P });
  return false;
}
