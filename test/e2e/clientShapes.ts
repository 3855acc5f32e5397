import { createHash, randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientMetadata } from '@modelcontextprotocol/sdk/shared/auth.js';
import { Browser } from '../support/browser.js';
import { call } from './flow.js';
import { TestOAuthClient } from '../support/oauthClient.js';
import type { Stack, TestUser } from './stack.js';

/**
 * Helpers for the client zoo: each test sends, with plain HTTP, what one real
 * MCP client sends (registration body, authorization request, token request),
 * and a Browser plays the person. Nothing here fills in defaults a client
 * would not send.
 */

/** RFC 7636 §4.1–4.2: a 43-character base64url verifier and its S256 challenge. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The `state` values clients generate, in the encodings they use. */
export const states = {
  /** 32 random bytes as 64 hex characters (MCP Inspector's generateOAuthState). */
  hex: () => randomBytes(32).toString('hex'),
  /** 32 random bytes as 43 base64url characters. */
  base64url: () => randomBytes(32).toString('base64url'),
  /** 32 random bytes as standard base64, with `+`, `/` and `=` that must survive URL encoding. */
  base64: () => randomBytes(32).toString('base64'),
};

export type Registration = Record<string, unknown> & { client_id: string; client_secret?: string; redirect_uris: string[] };

/**
 * POST /register with exactly `body` (RFC 7591 §3.1). The answer must be 201
 * and free of nulls and empty strings, which several clients' schemas reject.
 */
export async function register(stack: Stack, body: Record<string, unknown>): Promise<Registration> {
  const res = await fetch(`${stack.baseUrl}/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = (await res.json()) as Registration;
  expect(res.status, `registration answered ${JSON.stringify(answer)}`).toBe(201);
  expect(Object.entries(answer).filter(([, v]) => v === null || v === ''), 'no nulls or empty strings in the registration answer').toEqual([]);
  return answer;
}

/** Our protected resource metadata for /mcp, as a client reads it before authorizing (RFC 9728 §3). */
export async function protectedResourceMetadata(stack: Stack): Promise<{ resource: string; scopes_supported: string[] }> {
  const res = await fetch(`${stack.baseUrl}/.well-known/oauth-protected-resource/mcp`);
  expect(res.status).toBe(200);
  return (await res.json()) as { resource: string; scopes_supported: string[] };
}

/** Our /authorize with the client's parameters, in the client's order; undefined values are left out. */
export function authorizeUrl(stack: Stack, params: Array<[string, string | undefined]>): URL {
  const url = new URL('/authorize', stack.baseUrl);
  for (const [k, v] of params) if (v !== undefined) url.searchParams.append(k, v);
  return url;
}

/**
 * The person's part in a fresh browser: open the authorization URL, sign in,
 * allow, and stop when the browser is sent to `redirectUri` (a page the test
 * cannot serve: https://claude.ai/…, cursor://…, a loopback port nobody
 * listens on). Returns that URL with its query.
 */
export async function signInAndAllow(url: URL, user: TestUser, redirectUri: string, browser = new Browser()): Promise<URL> {
  const atClient = (u: URL) => u.href.startsWith(redirectUri);
  let page = await browser.open(url.href, atClient);
  const visited = () => `visited:\n${browser.history.join('\n')}\n${page.text().slice(0, 400)}`;
  expect(page.url.pathname === '/login' || atClient(page.url), `reached our sign-in page; ${visited()}`).toBe(true);
  if (page.url.pathname === '/login') {
    page = await page.submit('Sign in', { fill: { Email: user.email, Password: user.password } }, atClient);
  }
  if (page.url.pathname === '/consent') page = await page.submit('Allow', {}, atClient);
  expect(atClient(page.url), `sent back to ${redirectUri}; ${visited()}`).toBe(true);
  return page.url;
}

/** The code and state on the client's redirect URI; fails with Hydra's error if there is one. */
export function codeFrom(back: URL): { code: string; state: string | null } {
  const q = back.searchParams;
  expect(q.get('error'), `no error on the way back: ${back.href}`).toBeNull();
  const code = q.get('code');
  expect(code, `a code on the way back: ${back.href}`).toBeTruthy();
  return { code: code!, state: q.get('state') };
}

export interface TokenAnswer {
  status: number;
  body: { access_token?: string; refresh_token?: string; token_type?: string; scope?: string; expires_in?: number; error?: string; error_description?: string };
}

/** POST /token as a form (RFC 6749 §4.1.3, §6), with an optional Authorization header. */
export async function tokenRequest(stack: Stack, form: Array<[string, string | undefined]>, headers: Record<string, string> = {}): Promise<TokenAnswer> {
  const body = new URLSearchParams();
  for (const [k, v] of form) if (v !== undefined) body.append(k, v);
  const res = await fetch(`${stack.baseUrl}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: body.toString(),
  });
  return { status: res.status, body: (await res.json()) as TokenAnswer['body'] };
}

/** A successful token answer: a bearer access token, and a refresh token when `refresh` is expected. */
export function expectTokens(answer: TokenAnswer, opts: { refresh: boolean }) {
  expect(answer.status, `token endpoint answered ${JSON.stringify(answer.body)}`).toBe(200);
  expect(answer.body.token_type?.toLowerCase()).toBe('bearer');
  expect(answer.body.access_token).toBeTruthy();
  if (opts.refresh) expect(answer.body.refresh_token, 'a refresh token').toBeTruthy();
  else expect(answer.body.refresh_token, 'no refresh token').toBeUndefined();
  return answer.body as Required<Pick<TokenAnswer['body'], 'access_token' | 'scope'>> & TokenAnswer['body'];
}

/**
 * `tools/call whoami` through the official SDK client over Streamable HTTP,
 * carrying `accessToken` as a bearer header the way a client that did its own
 * OAuth does.
 */
export async function whoami(stack: Stack, accessToken: string): Promise<{ sub: string; client_id: string; scopes: string[] }> {
  const client = new Client({ name: 'client-zoo', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(stack.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${accessToken}` } } });
  await client.connect(transport);
  try {
    const me = await call(client, 'whoami');
    expect(me.isError, me.text).toBe(false);
    return me.isError ? ({} as never) : me.value;
  } finally {
    await endSession(client, transport);
  }
}

/**
 * End the session with DELETE (MCP Streamable HTTP, Session Management: a
 * client that no longer needs a session SHOULD), then close. The SDK's
 * `Client.close()` alone leaves the session open on the server.
 */
export async function endSession(client: Client, transport: StreamableHTTPClientTransport) {
  await transport.terminateSession();
  await client.close();
}

/**
 * An MCP SDK OAuthClientProvider shaped like a real SDK-based client: its own
 * redirect URL and registration metadata, and a `state()` only if that client
 * has one (the SDK sends no `state` when the provider has no such method).
 */
export class ShapedOAuthProvider extends TestOAuthClient {
  constructor(redirectUrl: string, clientMetadata: OAuthClientMetadata, state?: () => string) {
    super(redirectUrl, clientMetadata, { exactMetadata: true, state: state ?? null });
  }
}

/**
 * The SDK-driven flow: the SDK discovers, registers and builds the
 * authorization URL; the person signs in and allows; the SDK exchanges the
 * code and connects. Returns the connected client and what the SDK sent.
 */
export async function connectWithSdk(stack: Stack, user: TestUser, provider: ShapedOAuthProvider) {
  const first = new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider: provider });
  await expect(new Client({ name: 'client-zoo', version: '1.0.0' }).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
  const authorizationUrl = provider.authorizationUrl;
  expect(authorizationUrl, 'the SDK asked to send the person to /authorize').toBeDefined();
  const back = await signInAndAllow(authorizationUrl!, user, provider.redirectUrl);
  const { code, state } = codeFrom(back);
  await first.finishAuth(code);
  const client = new Client({ name: 'client-zoo', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider: provider });
  await client.connect(transport);
  return { client, authorizationUrl: authorizationUrl!, back, state, close: () => endSession(client, transport) };
}
