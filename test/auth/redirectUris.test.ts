import { describe, expect, it } from 'vitest';
import { checkRedirectUri } from '../../src/auth/redirectUris.js';

describe('checkRedirectUri (registration policy)', () => {
  it.each(['https://app.example.com/cb', 'http://127.0.0.1:6274/oauth/callback', 'http://localhost/callback', 'http://[::1]:8080/cb'])(
    'accepts %s',
    (uri) => expect(checkRedirectUri(uri)).toBeUndefined(),
  );
  it.each([
    ['javascript:alert(1)', 'scheme javascript'],
    ['http://evil.example/cb', 'must use https'],
    ['https://app.example.com/cb#frag', 'fragment'],
    ['https://*.example.com/cb', 'wildcards'],
    ['/relative', 'absolute'],
  ])('refuses %s', (uri, why) => expect(checkRedirectUri(uri)).toContain(why));
});
