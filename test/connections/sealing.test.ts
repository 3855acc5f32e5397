import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type ConnectionKey, createSealer, parseConnectionKeys, SealError, type StoredCredential } from '../../src/connections/sealing.js';

const newKey = (kid: string): ConnectionKey => ({ kid, key: new Uint8Array(randomBytes(32)) });
const entry = (k: ConnectionKey) => `${k.kid}:${Buffer.from(k.key).toString('base64url')}`;

const CRED: StoredCredential = { accessToken: 'at-1', refreshToken: 'rt-1', expiresAt: 1_900_000_000, scope: 'read write', tokenType: 'Bearer' };
const ALICE_GITHUB = { sub: 'alice', provider: 'github' };

async function openError(p: Promise<unknown>): Promise<SealError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(SealError);
  return e as SealError;
}

/** Replace one character of part `index` of a compact JWE by another of the base64url alphabet. */
function flip(sealed: string, index: number): string {
  const parts = sealed.split('.');
  const part = parts[index]!;
  const at = Math.floor(part.length / 2);
  parts[index] = part.slice(0, at) + (part[at] === 'A' ? 'B' : 'A') + part.slice(at + 1);
  return parts.join('.');
}

describe('createSealer', () => {
  it('round trip: what is sealed opens to the same credential; the ciphertext shows no token and names its key', async () => {
    const k1 = newKey('k1');
    const sealer = createSealer([k1]);
    const sealed = await sealer.seal(CRED, ALICE_GITHUB);
    expect(await sealer.open(sealed, ALICE_GITHUB)).toEqual(CRED);
    expect(sealed.split('.')).toHaveLength(5);
    expect(sealed).not.toContain('rt-1');
    expect(Buffer.from(sealed.split('.')[0]!, 'base64url').toString()).not.toContain('at-1');
    expect(sealer.keyIdOf(sealed)).toBe('k1');
    expect(sealer.newestKeyId).toBe('k1');
    // A fresh IV each time: the same credential never seals to the same text.
    expect(await sealer.seal(CRED, ALICE_GITHUB)).not.toBe(sealed);
  });

  it('round trip of a credential with only an access token', async () => {
    const sealer = createSealer([newKey('k1')]);
    const minimal = { accessToken: 'only' };
    expect(await sealer.open(await sealer.seal(minimal, ALICE_GITHUB), ALICE_GITHUB)).toEqual(minimal);
  });

  it('rotation: the newest (first) key seals; an old key still opens what it sealed', async () => {
    const old = newKey('old');
    const fresh = newKey('new');
    const before = createSealer([old]);
    const sealedOld = await before.seal(CRED, ALICE_GITHUB);
    const after = createSealer([fresh, old]);
    expect(after.newestKeyId).toBe('new');
    expect(await after.open(sealedOld, ALICE_GITHUB)).toEqual(CRED);
    const sealedNew = await after.seal(CRED, ALICE_GITHUB);
    expect(after.keyIdOf(sealedNew)).toBe('new');
    expect(after.keyIdOf(sealedOld)).toBe('old');
    // Once the old key is dropped, its ciphertexts no longer open; the new ones do.
    const dropped = createSealer([fresh]);
    expect((await openError(dropped.open(sealedOld, ALICE_GITHUB))).reason).toBe('unknown_key');
    expect(await dropped.open(sealedNew, ALICE_GITHUB)).toEqual(CRED);
  });

  it.each([
    ['protected header', 0],
    ['encrypted key (must stay empty for dir)', 1],
    ['IV', 2],
    ['ciphertext', 3],
    ['authentication tag', 4],
  ])('tampered %s: refused as tampered', async (_name, index) => {
    const sealer = createSealer([newKey('k1')]);
    const sealed = await sealer.seal(CRED, ALICE_GITHUB);
    const altered = index === 1 ? sealed.replace('..', '.AAAA.') : flip(sealed, index);
    expect(altered).not.toBe(sealed);
    expect((await openError(sealer.open(altered, ALICE_GITHUB))).reason).toBe('tampered');
  });

  it('a header rewritten to name another sub (a forged move) is refused: the header is authenticated', async () => {
    const sealer = createSealer([newKey('k1')]);
    const [, ...rest] = (await sealer.seal(CRED, ALICE_GITHUB)).split('.');
    const forged = Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid: 'k1', sub: 'mallory', prv: 'github' })).toString('base64url');
    expect((await openError(sealer.open([forged, ...rest].join('.'), { sub: 'mallory', provider: 'github' }))).reason).toBe('tampered');
  });

  it.each([
    ['an empty string', ''],
    ['a JWT-shaped string (three parts)', 'a.b.c'],
    ['five parts of junk', 'x.y.z.w.v'],
  ])('not a ciphertext (%s): refused as tampered', async (_name, junk) => {
    const sealer = createSealer([newKey('k1')]);
    expect((await openError(sealer.open(junk, ALICE_GITHUB))).reason).toBe('tampered');
    expect(() => sealer.keyIdOf(junk)).toThrow(SealError);
  });

  it('missing key: sealed with a key id not configured is refused as unknown_key, naming the id', async () => {
    const sealed = await createSealer([newKey('gone')]).seal(CRED, ALICE_GITHUB);
    const e = await openError(createSealer([newKey('k1')]).open(sealed, ALICE_GITHUB));
    expect(e.reason).toBe('unknown_key');
    expect(e.message).toContain('"gone"');
  });

  it('wrong key: same key id, other bytes, is refused (as tampered: AES-GCM cannot tell the two apart)', async () => {
    const sealed = await createSealer([newKey('k1')]).seal(CRED, ALICE_GITHUB);
    expect((await openError(createSealer([newKey('k1')]).open(sealed, ALICE_GITHUB))).reason).toBe('tampered');
  });

  it.each([
    ['another sub', { sub: 'bob', provider: 'github' }],
    ['another provider', { sub: 'alice', provider: 'notion' }],
    ['both', { sub: 'bob', provider: 'notion' }],
  ])('moved to %s: refused as wrong_binding', async (_name, bind) => {
    const sealer = createSealer([newKey('k1')]);
    const sealed = await sealer.seal(CRED, ALICE_GITHUB);
    expect((await openError(sealer.open(sealed, bind))).reason).toBe('wrong_binding');
  });

  it('errors never carry the plaintext or key bytes', async () => {
    const k = newKey('k1');
    const sealer = createSealer([k]);
    const sealed = await sealer.seal(CRED, ALICE_GITHUB);
    const e = await openError(sealer.open(sealed, { sub: 'bob', provider: 'github' }));
    for (const secret of ['at-1', 'rt-1', Buffer.from(k.key).toString('base64url')]) expect(e.message).not.toContain(secret);
  });

  it.each([
    ['no keys', []],
    ['a duplicate key id', [{ kid: 'a', key: new Uint8Array(32) }, { kid: 'a', key: new Uint8Array(32) }]],
    ['a 16-byte key', [{ kid: 'a', key: new Uint8Array(16) }]],
  ])('refuses %s at construction', (_name, keys) => {
    expect(() => createSealer(keys)).toThrow(TypeError);
  });

  it.each([
    ['an empty sub', { sub: '', provider: 'github' }],
    ['an empty provider', { sub: 'alice', provider: '' }],
  ])('refuses to seal or open with %s', async (_name, bind) => {
    const sealer = createSealer([newKey('k1')]);
    await expect(sealer.seal(CRED, bind)).rejects.toThrow(TypeError);
    await expect(sealer.open(await sealer.seal(CRED, ALICE_GITHUB), bind)).rejects.toThrow(TypeError);
  });
});

describe('parseConnectionKeys', () => {
  it('reads "kid:key" entries, newest first, trimming spaces', () => {
    const a = newKey('2026-07');
    const b = newKey('old_1');
    const keys = parseConnectionKeys(` ${entry(a)} , ${entry(b)} `);
    expect(keys.map((k) => k.kid)).toEqual(['2026-07', 'old_1']);
    expect(Buffer.from(keys[0]!.key).equals(Buffer.from(a.key))).toBe(true);
    expect(Buffer.from(keys[1]!.key).equals(Buffer.from(b.key))).toBe(true);
  });

  const good = Buffer.alloc(32, 7).toString('base64url');
  it.each([
    ['empty', '', /^CONNECTION_KEYS: must list at least one key/],
    ['only spaces', '   ', /^CONNECTION_KEYS: must list at least one key/],
    ['a stray comma', `k1:${good},`, /^CONNECTION_KEYS: entry 2 is empty/],
    ['no colon', good, /^CONNECTION_KEYS: entry 1: expected "<key id>:<32 bytes base64url>"/],
    ['an empty key id', `:${good}`, /^CONNECTION_KEYS: entry 1: key id "" must be 1 to 32 characters/],
    ['a key id with a space', `my key:${good}`, /^CONNECTION_KEYS: entry 1: key id "my key" must be/],
    ['a key id with a dot', `k.1:${good}`, /^CONNECTION_KEYS: entry 1: key id "k.1" must be/],
    ['a key id of 33 characters', `${'k'.repeat(33)}:${good}`, /^CONNECTION_KEYS: entry 1: key id "k{33}" must be/],
    ['an empty key', 'k1:', /^CONNECTION_KEYS: entry 1 \("k1"\): the key must be base64url/],
    ['standard base64 (+ and /)', `k1:${Buffer.alloc(32, 0xfb).toString('base64')}`, /^CONNECTION_KEYS: entry 1 \("k1"\): the key must be base64url/],
    ['a padded key', `k1:${good}=`, /^CONNECTION_KEYS: entry 1 \("k1"\): the key must be base64url/],
    ['a 16-byte key', `k1:${Buffer.alloc(16, 1).toString('base64url')}`, /^CONNECTION_KEYS: entry 1 \("k1"\): the key must be 32 bytes, found 16/],
    ['a 33-byte key', `k1:${Buffer.alloc(33, 1).toString('base64url')}`, /^CONNECTION_KEYS: entry 1 \("k1"\): the key must be 32 bytes, found 33/],
    ['a duplicate key id', `k1:${good},k2:${good},k1:${good}`, /^CONNECTION_KEYS: entry 3: key id "k1" appears twice/],
    ['a bad second entry', `k1:${good},k2:short`, /^CONNECTION_KEYS: entry 2 \("k2"\): the key must be 32 bytes/],
  ])('refuses %s with a TypeError naming CONNECTION_KEYS and the entry', (_name, value, message) => {
    let error: unknown;
    try {
      parseConnectionKeys(value);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(message);
    // The key bytes are never echoed back.
    expect((error as Error).message).not.toContain(good);
  });
});
