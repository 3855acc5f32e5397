import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { describe, expect, it } from 'vitest';
import { type Principal, principalOf, toAuthInfo } from '../../src/auth/principal.js';

const RESOURCE = new URL('http://127.0.0.1:3000/mcp');
const alice: Principal = { sub: 'alice', clientId: 'c1', scopes: ['notes:read', 'notes:write'], expiresAt: 2_000_000_000, kind: 'person' };
const robot: Principal = { sub: 'robot-1', clientId: 'robot-1', scopes: ['notes:read'], expiresAt: 2_000_000_000, kind: 'machine' };

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
    const bare: Principal = { sub: 'bob', clientId: '', scopes: [], expiresAt: 1, kind: 'person' };
    expect(principalOf(toAuthInfo(bare, 't'))).toEqual(bare);
  });

  it('round-trips a machine principal, kind included', () => {
    expect(principalOf(toAuthInfo(robot, 'tok-2', RESOURCE))).toEqual(robot);
  });

  it('makes a person of a principal given without kind: only the verifier says machine', () => {
    const { kind: _kind, ...noKind } = alice;
    expect(toAuthInfo(noKind, 't').extra).toEqual({ sub: 'alice', kind: 'person' });
  });

  it('reads the principal of an AuthInfo another verifier built with our extra fields', () => {
    const auth: AuthInfo = { token: 't', clientId: 'c2', scopes: ['a'], expiresAt: 5, extra: { sub: 'carol', kind: 'person', other: 1 } };
    expect(principalOf(auth)).toEqual({ sub: 'carol', clientId: 'c2', scopes: ['a'], expiresAt: 5, kind: 'person' });
  });

  it('gives an expiry of 0 (long past) when the AuthInfo has none', () => {
    const auth: AuthInfo = { token: 't', clientId: 'c', scopes: [], extra: { sub: 'dave', kind: 'person' } };
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
    // Person or machine decides which tools may be called: an AuthInfo that does not say is refused, not guessed.
    ['no kind', { ...base, extra: { sub: 'alice' } }],
    ['an unknown kind', { ...base, extra: { sub: 'alice', kind: 'robot' } }],
    ['a kind that is not a string', { ...base, extra: { sub: 'alice', kind: 1 } }],
  ])('refuses %s: no principal, so nothing can act for anyone', (_name, auth) => {
    expect(principalOf(auth)).toBeUndefined();
  });

  it('does not take the subject from anywhere but extra.sub', () => {
    // A client id or token that looks like a user must never become the caller.
    const auth = { ...base, sub: 'mallory', extra: { user: 'mallory' } } as AuthInfo;
    expect(principalOf(auth)).toBeUndefined();
  });
});
