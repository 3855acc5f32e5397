import { createHmac, hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { CursorKey, InvalidCursorError, MAX_CURSOR_LENGTH, pageInput } from '../../src/tools/cursor.js';

const SECRET = 'a-session-secret-of-at-least-32-characters';
const position = z.object({ createdAt: z.string(), id: z.string() });
const at = { createdAt: '2026-11-25T22:00:00.000Z', id: '5b0c6c1e-0000-4000-8000-000000000001' };

const key = CursorKey.fromSecret(SECRET);
const alice = key.cursorsFor('alice', 'notes_list');
const good = alice.seal(at);

/** Replace the character at `i` with another base64url character. */
const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const [, payload, tag] = good.split('.') as [string, string, string];

describe('page cursors', () => {
  it('round-trips a position for the same caller and tool, and is opaque base64url text', () => {
    expect(good).toMatch(/^c1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(alice.open(good, position)).toEqual(at);
    expect(alice.open(undefined, position)).toBeUndefined();
  });

  it('names no caller or tool inside the cursor (they are bound by the MAC only)', () => {
    const inside = Buffer.from(payload, 'base64url').toString('utf8');
    expect(JSON.parse(inside)).toEqual(at);
    expect(good).not.toContain('alice');
    expect(inside).not.toContain('notes_list');
  });

  it('is accepted by another replica with the same secret, refused by one with another secret', () => {
    expect(CursorKey.fromSecret(SECRET).cursorsFor('alice', 'notes_list').open(good, position)).toEqual(at);
    expect(() => CursorKey.fromSecret(`${SECRET}-rotated`).cursorsFor('alice', 'notes_list').open(good, position)).toThrow(InvalidCursorError);
  });

  it('uses a key derived for cursors, not the raw secret (a MAC under the raw secret is refused)', () => {
    const raw = createHmac('sha256', SECRET).update(JSON.stringify(['hydra-mcp/cursor', 'c1', 'notes_list', 'alice', payload])).digest('base64url');
    expect(() => alice.open(`c1.${payload}.${raw}`, position)).toThrow(expect.objectContaining({ reason: 'not_issued_here' }));
    const derived = Buffer.from(hkdfSync('sha256', SECRET, Buffer.alloc(0), 'hydra-mcp tool page cursors v1', 32));
    const mac = createHmac('sha256', derived).update(JSON.stringify(['hydra-mcp/cursor', 'c1', 'notes_list', 'alice', payload])).digest('base64url');
    expect(`c1.${payload}.${mac}`).toBe(good);
  });

  const forgedPayload = Buffer.from(JSON.stringify({ ...at, createdAt: '2099-01-01T00:00:00.000Z' })).toString('base64url');
  it.each<[string, () => unknown, 'malformed' | 'not_issued_here' | 'unfit']>([
    ['another person (same tool)', () => key.cursorsFor('bob', 'notes_list').open(good, position), 'not_issued_here'],
    ['another tool (same person)', () => key.cursorsFor('alice', 'records_list').open(good, position), 'not_issued_here'],
    ['a forged position with the old tag', () => alice.open(`c1.${forgedPayload}.${tag}`, position), 'not_issued_here'],
    ['one flipped character in the position', () => alice.open(`c1.${flip(payload, 3)}.${tag}`, position), 'not_issued_here'],
    ['one flipped character in the tag', () => alice.open(`c1.${payload}.${flip(tag, 5)}`, position), 'not_issued_here'],
    ['a truncated cursor (last characters cut)', () => alice.open(good.slice(0, -4), position), 'malformed'],
    ['a truncated cursor (tag gone)', () => alice.open(`c1.${payload}`, position), 'malformed'],
    ['a tag of the wrong length', () => alice.open(`c1.${payload}.${tag}AAAA`, position), 'malformed'],
    // Same 32 bytes, but the unused low bits of the last character set: only one spelling is ours.
    ['a non-canonical spelling of the right tag', () => alice.open(`c1.${payload}.${tag.slice(0, -1)}${B64[B64.indexOf(tag.at(-1)!) + 1]}`, position), 'malformed'],
    ['an unknown version', () => alice.open(`c2.${payload}.${tag}`, position), 'malformed'],
    ['an extra part', () => alice.open(`${good}.x`, position), 'malformed'],
    ['characters outside base64url', () => alice.open(`c1.${payload}+/.${tag}`, position), 'malformed'],
    ['plain garbage', () => alice.open('not a cursor', position), 'malformed'],
    ['an empty string', () => alice.open('', position), 'malformed'],
    ['a cursor longer than the maximum', () => alice.open(`c1.${'A'.repeat(MAX_CURSOR_LENGTH)}.${tag}`, position), 'malformed'],
    ['an intact cursor of another shape (the tool changed)', () => alice.open(alice.seal({ offset: 5 }), position), 'unfit'],
  ])('refuses %s with an error naming the cursor', (_case, open, reason) => {
    let error: unknown;
    try {
      open();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidCursorError);
    expect(error).toMatchObject({ reason, name: 'InvalidCursorError' });
    expect((error as Error).message).toMatch(/^invalid_cursor: the cursor /);
    expect((error as Error).message).toContain('without a cursor');
  });

  it('refuses to seal a position too large for a cursor', () => {
    expect(() => alice.seal({ big: 'x'.repeat(MAX_CURSOR_LENGTH) })).toThrow(RangeError);
  });

  it.each([
    ['a short secret', () => CursorKey.fromSecret('short')],
    ['an empty sub', () => key.cursorsFor('', 'notes_list')],
    ['an empty tool name', () => key.cursorsFor('alice', '')],
  ])('refuses to build cursors from %s', (_case, build) => {
    expect(build).toThrow(TypeError);
  });

  it('keeps the key out of reach of tools: PageCursors exposes only seal and open', () => {
    expect(Object.keys(alice).sort()).toEqual(['open', 'seal']);
    expect(JSON.stringify(key)).toBe('{}');
  });
});

describe('pageInput', () => {
  const shape = z.object(pageInput({ defaultLimit: 20, maxLimit: 100 }));

  it('defaults the limit and leaves the cursor out for the first page', () => {
    expect(shape.parse({})).toEqual({ limit: 20 });
  });

  it.each([
    ['a limit of 0', { limit: 0 }],
    ['a negative limit', { limit: -1 }],
    ['a limit over the maximum', { limit: 101 }],
    ['a fractional limit', { limit: 2.5 }],
    ['an empty cursor', { cursor: '' }],
    ['an over-long cursor', { cursor: 'x'.repeat(MAX_CURSOR_LENGTH + 1) }],
  ])('refuses %s', (_case, input) => {
    expect(shape.safeParse(input).success).toBe(false);
  });

  it.each([
    ['a default over the maximum', { defaultLimit: 101, maxLimit: 100 }],
    ['a zero maximum', { defaultLimit: 1, maxLimit: 0 }],
    ['a maximum over 1000', { defaultLimit: 10, maxLimit: 5000 }],
  ])('refuses a tool declaring %s', (_case, opts) => {
    expect(() => pageInput(opts)).toThrow(TypeError);
  });
});
