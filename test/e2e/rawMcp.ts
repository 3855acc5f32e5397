import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { expect } from 'vitest';
import { Browser } from '../support/browser.js';
import { signInAndAllow } from './flow.js';
import { TestOAuthClient } from '../support/oauthClient.js';
import type { Stack, TestUser } from './stack.js';

export const REDIRECT = 'http://127.0.0.1:53682/callback';

/**
 * An access token from the real flow (the SDK client discovers and registers,
 * the person signs in and allows, the SDK exchanges the code), without the
 * SDK opening an MCP session: the only requests made with the token are the
 * test's own, so a test can count what the fair-use limit takes.
 */
export async function tokenFor(stack: Stack, user: TestUser, oauth = new TestOAuthClient(REDIRECT)): Promise<string> {
  const first = new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider: oauth });
  await expect(new Client({ name: 'e2e', version: '1.0.0' }).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
  const back = await signInAndAllow(new Browser(), oauth, user, {});
  await first.finishAuth(back.url.searchParams.get('code')!);
  return oauth.tokens()!.access_token;
}

/** One POST to /mcp as an MCP client sends it; the JSON-RPC messages of the answer, from a JSON body or an SSE stream. */
export async function postMcp(stack: Stack, token: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(stack.mcpUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const messages: any[] = (res.headers.get('content-type') ?? '').startsWith('text/event-stream')
    ? text
        .split('\n')
        .filter((l) => l.startsWith('data: ') && l.length > 6)
        .map((l) => JSON.parse(l.slice(6)))
    : text
      ? [JSON.parse(text)].flat()
      : [];
  return { status: res.status, session: res.headers.get('mcp-session-id') ?? undefined, messages, body: text };
}

/** A `tools/call` of whoami with JSON-RPC id `id`. */
export const whoami = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'whoami', arguments: {} } });
