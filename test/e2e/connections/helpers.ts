import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ElicitationCompleteNotificationSchema, ElicitRequestSchema, type ElicitResult } from '@modelcontextprotocol/sdk/types.js';
import { expect } from 'vitest';
import { defineTool, ToolError } from '../../../src/tools/contract.js';
import type { Browser, Page } from '../../support/browser.js';
import type { TestUser } from '../stack.js';

/** The tool under test: asks the upstream API (test/e2e/upstream.ts) who the person is there, with the person's own upstream token. */
export function upstreamMeTool(apiUrl: () => string, opts: { onToken?: (token: string) => void } = {}) {
  return defineTool({
    name: 'upstream_me',
    description: 'Who you are at the upstream service (test tool).',
    input: {},
    scopes: [],
    credentials: ['upstream'],
    async handler(_input, ctx) {
      const token = await ctx.credentials.upstream.accessToken();
      opts.onToken?.(token);
      const res = await fetch(apiUrl(), { headers: { authorization: `Bearer ${token}` } });
      if (!res.ok) throw new ToolError(`the upstream API answered ${res.status}`);
      return (await res.json()) as unknown;
    },
  });
}

/** The person's part of connecting: our account sign-in if needed, Connect, then the provider's own login and consent. */
export async function connectInBrowser(browser: Browser, url: string, user: TestUser, upstreamUser: string, opts: { deny?: boolean } = {}): Promise<Page> {
  let page = await browser.open(url);
  if (page.text().includes('Sign in to connect')) {
    page = await page.submit('Sign in', { fill: { Email: user.email, Password: user.password } });
  }
  expect(page.text(), page.url.href).toContain('Connect Upstream');
  page = await page.submit('Connect Upstream');
  expect(page.url.pathname, browser.history.join('\n')).toBe('/login');
  page = await page.submit('Sign in', { fill: { Username: upstreamUser } });
  return page.submit(opts.deny ? 'Deny' : 'Allow');
}

/** A 2025-era SDK client declaring URL elicitation; `onElicit` plays the person. */
export function elicitingClient(onElicit: (url: string, elicitationId: string) => Promise<ElicitResult['action']>, completed: string[]) {
  return () => {
    const client = new Client({ name: 'e2e-connect', version: '1.0.0' }, { capabilities: { elicitation: { url: {} } } });
    client.setRequestHandler(ElicitRequestSchema, async (req) => {
      const p = req.params as { mode?: string; url?: string; elicitationId?: string };
      expect(p.mode).toBe('url');
      return { action: await onElicit(p.url!, p.elicitationId!) };
    });
    client.setNotificationHandler(ElicitationCompleteNotificationSchema, (n) => void completed.push(n.params.elicitationId));
    return client;
  };
}
