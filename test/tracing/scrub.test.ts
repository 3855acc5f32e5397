import { describe, expect, it } from 'vitest';
import { isIdLike, scrubAttributes, scrubText, scrubUrl } from '../../src/tracing/scrub.js';

describe('span scrubbing', () => {
  it.each([
    ['a Kratos identity (its id is the sub)', 'http://127.0.0.1:4434/admin/identities/6f1c1d0e-8b1a-4c57-9a41-3a6c0f2d9e11', 'http://127.0.0.1:4434/admin/identities/{id}'],
    ["Hydra's login accept with its challenge", 'http://127.0.0.1:4445/admin/oauth2/auth/requests/login/accept?login_challenge=abc123secret', 'http://127.0.0.1:4445/admin/oauth2/auth/requests/login/accept?login_challenge=_'],
    ['a callback with code and state', 'https://mcp.example.com/account/connections/upstream/callback?code=ory_ac_xyz&state=s3cr3t#frag', 'https://mcp.example.com/account/connections/upstream/callback?code=_&state=_'],
    ['credentials in the URL', 'https://user:pass@idp.example.com/oauth2/token', 'https://idp.example.com/oauth2/token'],
    ['a client metadata document URL with an id in it', 'https://chatgpt.com/oauth/a1b2c3d4e5f6g7h8/client.json', 'https://chatgpt.com/oauth/{id}/client.json'],
    ['endpoints stay readable', 'http://127.0.0.1:4445/admin/oauth2/introspect', 'http://127.0.0.1:4445/admin/oauth2/introspect'],
  ])('URL: %s', (_case, url, expected) => {
    expect(scrubUrl(url)).toBe(expected);
  });

  it.each(['6f1c1d0e-8b1a-4c57-9a41-3a6c0f2d9e11', '12345', 'alice@example.com', 'a1b2c3d4e5', 'x'.repeat(41), 'abc%20def'])('%s is id-like', (s) => {
    expect(isIdLike(s)).toBe(true);
  });

  it.each(['admin', 'identities', 'openid-configuration', 'jwks.json', 'v1', 'self-service', 'oauth2', ''])('%s is an endpoint name', (s) => {
    expect(isIdLike(s)).toBe(false);
  });

  it('drops attributes named like secrets or people, keeps status codes, scrubs URLs and tokens in any string', () => {
    const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';
    expect(
      scrubAttributes({
        'http.request.header.authorization': ['Bearer abc'],
        'enduser.id': 'alice',
        'oauth.client_secret': 'x',
        'user.sub': 'alice',
        'http.response.status_code': 200,
        'error.code': 'E1',
        'url.full': 'http://h/admin/identities/6f1c1d0e-8b1a-4c57-9a41-3a6c0f2d9e11?x=1',
        'url.path': '/admin/identities/6f1c1d0e-8b1a-4c57-9a41-3a6c0f2d9e11',
        'url.query': '?login_challenge=abc',
        'exception.message': `failed at https://h/cb?code=123 with ${jwt} and ory_at_abc.def and Bearer xyz`,
      }),
    ).toEqual({
      'http.response.status_code': 200,
      'error.code': 'E1',
      'url.full': 'http://h/admin/identities/{id}?x=_',
      'url.path': '/admin/identities/{id}',
      'url.query': 'login_challenge=_',
      'exception.message': 'failed at https://h/cb?code=_ with [redacted] and [redacted] and Bearer [redacted]',
    });
  });

  it('text without secrets is unchanged', () => {
    expect(scrubText('tools/call notes_add')).toBe('tools/call notes_add');
  });
});
