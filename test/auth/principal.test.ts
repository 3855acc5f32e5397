import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { describe, expect, it } from 'vitest';
import { type Principal, principalOf, toAuthInfo } from '../../src/auth/principal.js';

const RESOURCE = new URL('http://127.0.0.1:3000/mcp');
const alice: Principal = { sub: 'alice', clientId: 'c1', scopes: ['notes:read', 'notes:write'], expiresAt: 2_000_000_000 };

describe('principal ⇄ AuthInfo', () => {
  it('round-trips a principal through the SDK AuthInfo unchanged', () => {
    const auth = toAuthInfo(alice, 'tok-1', RESOURCE);
    expect(auth).toMatchObject({ token: 'tok-1', clientId: 'c1', scopes: ['notes:read', 'notes:write'], expiresAt: 2_000_000_000 });
    expect(auth.resource?.href).toBe(RESOURCE.href);
    expect(principalOf(auth)).toEqual(alice);
  });

  it('sets no resource when none is given (the SDK reads an absent one as "not checked")', () => {
    const auth = toAuthInfo(alice, 'tok-1');
    expect('resource' in auth).toBe(false);
    expect(principalOf(auth)).toEqual(alice);
  });

  it('keeps an empty scope list and an empty client id as they are', () => {
    const bare: Principal = { sub: 'bob', clientId: '', scopes: [], expiresAt: 1 };
    expect(principalOf(toAuthInfo(bare, 't'))).toEqual(bare);
  });

  it('reads the principal of an AuthInfo another verifier built', () => {
    // The shape the SDK's own verifiers and ours agree on: the subject in extra.sub.
    const auth: AuthInfo = { token: 't', clientId: 'c2', scopes: ['a'], expiresAt: 5, extra: { sub: 'carol', other: 1 } };
    expect(principalOf(auth)).toEqual({ sub: 'carol', clientId: 'c2', scopes: ['a'], expiresAt: 5 });
  });

  it('gives an expiry of 0 (long past) when the AuthInfo has none', () => {
    const auth: AuthInfo = { token: 't', clientId: 'c', scopes: [], extra: { sub: 'dave' } };
    expect(principalOf(auth)?.expiresAt).toBe(0);
  });

  const base = { token: 't', clientId: 'c', scopes: ['notes:read'], expiresAt: 2_000_000_000 };
  it.each<[string, AuthInfo | undefined]>([
    ['no AuthInfo at all', undefined],
    ['no extra', { ...base }],
    ['extra without sub', { ...base, extra: {} }],
    ['an empty sub', { ...base, extra: { sub: '' } }],
    ['a numeric sub', { ...base, extra: { sub: 42 } }],
    ['a sub that is an object', { ...base, extra: { sub: { id: 'alice' } } }],
    ['a null sub', { ...base, extra: { sub: null } }],
  ])('refuses %s: no principal, so nothing can act for anyone', (_name, auth) => {
    expect(principalOf(auth)).toBeUndefined();
  });

  it('does not take the subject from anywhere but extra.sub', () => {
    // A client id or token that looks like a user must never become the caller.
    const auth = { ...base, sub: 'mallory', extra: { user: 'mallory' } } as AuthInfo;
    expect(principalOf(auth)).toBeUndefined();
  });
});
