import { describe, expect, it } from 'vitest';
import { hashPassword, verifyNothing, verifyPassword } from '../../src/account/password.js';

describe('scrypt password hashing', () => {
  it('stores parameters and salt, and verifies the right password only', async () => {
    const hash = await hashPassword('correct horse');
    expect(hash).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(hash).not.toContain('correct horse');
    expect(await verifyPassword('correct horse', hash)).toBe(true);
    expect(await verifyPassword('correct hors', hash)).toBe(false);
  });
  it('salts: the same password hashes differently each time', async () => {
    expect(await hashPassword('same')).not.toBe(await hashPassword('same'));
  });
  it.each([
    ['a tampered key', (h: string) => h.slice(0, -4) + 'AAA='],
    ['an unknown algorithm', (h: string) => h.replace(/^scrypt/, 'md5')],
    ['absurd parameters', (h: string) => h.replace('$32768$', '$1099511627776$')],
    ['a truncated string', (h: string) => h.split('$').slice(0, 4).join('$')],
    ['N not a power of two', (h: string) => h.replace('$32768$', '$32767$')],
    ['memory beyond the bound', (h: string) => h.replace('$32768$8$', '$1048576$32$')],
    ['a tampered salt', (h: string) => h.split('$').map((x, i) => (i === 4 ? 'AAAAAAAAAAAAAAAAAAAAAA==' : x)).join('$')],
    ['an empty string', () => ''],
  ])('rejects %s without throwing', async (_case, mangle) => {
    const hash = await hashPassword('pw-123456');
    expect(await verifyPassword('pw-123456', mangle(hash))).toBe(false);
  });
  it('verifies Unicode-normalised passwords (NFKC), so a composed and a decomposed é match', async () => {
    const hash = await hashPassword('caf\u00e9 au lait');
    expect(await verifyPassword('cafe\u0301 au lait', hash)).toBe(true);
  });
  it('verifyNothing answers false for any password (the unknown-user path)', async () => {
    expect(await verifyNothing('whatever')).toBe(false);
  });
});
