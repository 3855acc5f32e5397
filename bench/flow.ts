import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { Browser } from '../test/support/browser.js';
import { TestOAuthClient } from '../test/support/oauthClient.js';
import type { FlowResult } from './results.js';
import { quantile } from './stats.js';

export const FLOW_STEPS = ['discovery + registration', 'authorize → login page', 'sign in → consent page', 'allow → code', 'code → tokens'] as const;

/**
 * The whole OAuth flow as an MCP client and a person do it, timed step by
 * step: the SDK's auth() discovers and registers a new client each run
 * (PKCE), a fresh cookie-less browser signs in and allows, auth() exchanges
 * the code. Returns the access token so the caller can check it works.
 */
export async function timeOneFlow(mcpUrl: URL, user: { email: string; password: string }): Promise<{ ms: number[]; accessToken: string }> {
  const oauth = new TestOAuthClient('http://127.0.0.1:53682/callback', { client_name: 'hydra-mcp bench' });
  const atClient = (u: URL) => u.href.startsWith(oauth.redirectUrl);
  const browser = new Browser();
  const ms: number[] = [];
  let t = performance.now();
  const lap = () => {
    const now = performance.now();
    ms.push(now - t);
    t = now;
  };
  if ((await auth(oauth, { serverUrl: mcpUrl })) !== 'REDIRECT' || !oauth.authorizationUrl) throw new Error('auth() did not ask for a redirect');
  lap();
  let page = await browser.open(oauth.authorizationUrl.href, atClient);
  if (page.url.pathname !== '/login') throw new Error(`expected the login page, got ${page.url.href}`);
  lap();
  page = await page.submit('Sign in', { fill: { Email: user.email, Password: user.password } }, atClient);
  if (page.url.pathname !== '/consent') throw new Error(`expected the consent page, got ${page.url.href}`);
  lap();
  page = await page.submit('Allow', {}, atClient);
  const code = page.url.searchParams.get('code');
  if (!atClient(page.url) || !code) throw new Error(`expected a redirect with a code, got ${page.url.href}`);
  lap();
  if ((await auth(oauth, { serverUrl: mcpUrl, authorizationCode: code })) !== 'AUTHORIZED') throw new Error('code exchange failed');
  lap();
  return { ms, accessToken: oauth.tokens()!.access_token };
}

/** Medians here are nearest-rank (quantile 0.5): always a run that happened. */
export function summariseFlows(runs: number[][]): FlowResult {
  const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);
  const totals = runs.map((r) => r.reduce((a, b) => a + b, 0)).sort((a, b) => a - b);
  return {
    runs: runs.length,
    medianMs: quantile(totals, 0.5),
    p95Ms: quantile(totals, 0.95),
    steps: FLOW_STEPS.map((name, i) => ({ name, medianMs: median(runs.map((r) => r[i]!)) })),
  };
}
