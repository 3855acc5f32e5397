import { describe, expect, it } from 'vitest';
import { requiredFreshness } from '../../../src/signin/handlers/kratosLogin.js';

describe('requiredFreshness: what a client asks of the sign-in (OIDC prompt and max_age)', () => {
  const at = (q: string) => requiredFreshness(`https://hydra.example/oauth2/auth?client_id=c&${q}`);
  it.each([
    ['prompt=login', { promptLogin: true }],
    ['prompt=consent%20login', { promptLogin: true }],
    ['max_age=300', { promptLogin: false, maxAge: 300 }],
    ['max_age=0', { promptLogin: false, maxAge: 0 }],
    ['prompt=login&max_age=5', { promptLogin: true }],
  ])('%s', (q, expected) => expect(at(q)).toEqual(expected));
  it.each(['', 'prompt=consent', 'max_age=-1', 'max_age=abc', 'max_age=1e3', 'max_age=9999999999'])('nothing demanded by "%s"', (q) => expect(at(q)).toBeUndefined());
  it('no or an unparsable request URL: nothing demanded', () => {
    expect(requiredFreshness(undefined)).toBeUndefined();
    expect(requiredFreshness('not a url')).toBeUndefined();
  });
});
