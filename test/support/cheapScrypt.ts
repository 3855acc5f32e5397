import type * as Crypto from 'node:crypto';

/** scrypt's cost in the tests that use this: 2^10, where src/account/password.ts uses 2^15. */
export const TEST_SCRYPT_COST = 1024;

/**
 * node:crypto with scrypt at a test cost, for tests of sign-in, throttles and
 * account pages: they hash and check hundreds of passwords, and the key
 * derivation's cost is not what they test (about 3 ms a hash instead of
 * 60–300 ms). Every code path and the stored format are unchanged; a hash
 * still names N = 2^15, so one made here verifies only here.
 * test/account/password.test.ts keeps the real cost.
 *
 *   vi.mock('node:crypto', async (real) => (await import('../support/cheapScrypt.js')).withCheapScrypt(await real()));
 */
export function withCheapScrypt(crypto: typeof Crypto) {
  const scrypt = ((password: Crypto.BinaryLike, salt: Crypto.BinaryLike, keylen: number, options: Crypto.ScryptOptions, callback: (err: Error | null, key: Buffer) => void) =>
    crypto.scrypt(password, salt, keylen, { ...options, N: TEST_SCRYPT_COST }, callback)) as typeof crypto.scrypt;
  return { ...crypto, scrypt, default: { ...crypto, scrypt } };
}
