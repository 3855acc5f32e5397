import { describe, expect, it } from 'vitest';
import { checkRedirectUri } from '../../src/auth/redirectUris.js';

describe('checkRedirectUri (registration policy, OAuth 2.1 §2.3.1, RFC 8252 §7)', () => {
  it.each([
    ['https anywhere', 'https://app.example.com/cb'],
    ['claude.ai (https)', 'https://claude.ai/api/mcp/auth_callback'],
    ['loopback IP with port', 'http://127.0.0.1:6274/oauth/callback'],
    ['VS Code: loopback IP, no port', 'http://127.0.0.1/'],
    ['Claude Code: localhost, no port', 'http://localhost/callback'],
    ['IPv6 loopback', 'http://[::1]:8080/cb'],
    ['Cursor: private-use scheme', 'cursor://anysphere.cursor-mcp/oauth/callback'],
    ['Claude desktop', 'claude://claude.ai/settings/connectors'],
    ['VS Code app', 'vscode://vscode.github-authentication/did-authenticate'],
    ['RFC 8252 §7.1 reverse-DNS, one slash', 'com.example.app:/oauth2redirect/example-provider'],
    ['reverse-DNS with authority', 'com.example.app://callback'],
    ['query kept', 'https://app.example.com/cb?tenant=a'],
  ])('accepts %s: %s', (_name, uri) => expect(checkRedirectUri(uri)).toBeUndefined());

  it.each([
    ['javascript:alert(1)', 'scheme javascript'],
    ['JavaScript:alert(1)', 'scheme javascript'],
    ['data:text/html,<script>alert(1)</script>', 'scheme data'],
    ['file:///etc/passwd', 'scheme file'],
    ['vbscript:msgbox', 'scheme vbscript'],
    ['blob:https://app.example.com/uuid', 'scheme blob'],
    ['about:blank', 'scheme about'],
    ['ws://127.0.0.1:1/cb', 'scheme ws'],
    ['wss://app.example.com/cb', 'scheme wss'],
    ['http://evil.example/cb', 'must use https'],
    ['http://127.0.0.1.evil.example/cb', 'must use https'],
    ['https://app.example.com/cb#frag', 'fragment'],
    ['https://app.example.com/cb#', 'fragment'],
    ['com.example.app:/cb#x', 'fragment'],
    ['https://*.example.com/cb', 'wildcards'],
    ['https://user@app.example.com/cb', 'user credentials'],
    ['https://a:b@app.example.com/cb', 'user credentials'],
    ['https://@app.example.com/cb', 'user credentials'],
    ['http://127.0.0.1@evil.example/cb', 'user credentials'],
    ['/relative', 'absolute'],
    ['com.example.app:', 'no path'],
  ])('refuses %s', (uri, why) => expect(checkRedirectUri(uri)).toContain(why));
});
