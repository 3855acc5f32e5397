import { expect } from 'vitest';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Browser } from '../support/browser.js';
import { TestOAuthClient } from '../support/oauthClient.js';
import type { Stack, TestUser } from './stack.js';

export type TransportKind = 'streamable-http' | 'sse';

export interface Connected {
  client: Client;
  oauth: TestOAuthClient;
  /** The person's browser, with Hydra's and our cookies from the flow. */
  browser: Browser;
  close(): Promise<void>;
}

function transportFor(stack: Stack, kind: TransportKind, oauth: TestOAuthClient) {
  return kind === 'sse'
    ? new SSEClientTransport(stack.sseUrl, { authProvider: oauth })
    : new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider: oauth });
}

/**
 * The whole flow as an MCP client and a person do it: the SDK client
 * discovers, registers and builds the authorization URL; the browser signs
 * in on our login page and allows on our consent page; the SDK exchanges the
 * code (PKCE) and connects.
 */
export async function connectAs(
  stack: Stack,
  user: TestUser,
  opts: {
    transport?: TransportKind;
    uncheck?: string[];
    browser?: Browser;
    remember?: boolean;
    oauth?: TestOAuthClient;
    /** The client that connects once authorized (e.g. one declaring URL elicitation, with its handler). */
    client?: () => Client;
  } = {},
): Promise<Connected> {
  const kind = opts.transport ?? 'streamable-http';
  const oauth = opts.oauth ?? new TestOAuthClient('http://127.0.0.1:53682/callback');
  const first = transportFor(stack, kind, oauth);
  await expect(new Client({ name: 'e2e', version: '1.0.0' }).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
  expect(oauth.authorizationUrl, 'the SDK asked to send the person to /authorize').toBeDefined();

  const browser = opts.browser ?? new Browser();
  const back = await signInAndAllow(browser, oauth, user, opts);
  const code = back.url.searchParams.get('code');
  expect(code, `redirected back with a code: ${back.url.href}`).toBeTruthy();
  expect(back.url.searchParams.get('state')).toBe(oauth.authorizationUrl!.searchParams.get('state'));

  await first.finishAuth(code!);
  const client = opts.client?.() ?? new Client({ name: 'e2e', version: '1.0.0' });
  await client.connect(transportFor(stack, kind, oauth));
  return { client, oauth, browser, close: () => client.close() };
}

/** The person's part: sign in (unless remembered), allow (unless remembered), back to the client. */
export async function signInAndAllow(browser: Browser, oauth: TestOAuthClient, user: TestUser, opts: { uncheck?: string[]; remember?: boolean }) {
  const atClient = (u: URL) => u.href.startsWith(oauth.redirectUrl);
  let page = await browser.open(oauth.authorizationUrl!.href, atClient);
  if (page.url.pathname === '/login') {
    const remember = opts.remember ? { check: ['Keep me signed in on this device'] } : {};
    page = await page.submit('Sign in', { fill: { Email: user.email, Password: user.password }, ...remember }, atClient);
  }
  if (page.url.pathname === '/consent') {
    const remember = opts.remember ? { check: ['Remember this decision for 30 days'] } : {};
    page = await page.submit('Allow', { uncheck: opts.uncheck, ...remember }, atClient);
  }
  expect(atClient(page.url), `back at the client; visited:\n${browser.history.join('\n')}`).toBe(true);
  return page;
}

/** Call a tool and parse its JSON text; tool errors come back as { isError, text }. */
export async function call(client: Client, name: string, args: Record<string, unknown> = {}) {
  const result = (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
  if (result.isError) return { isError: true as const, text };
  return { isError: false as const, value: JSON.parse(text) as any, text };
}
