import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGISTRABLE_SCOPES } from '../../src/auth/scopes.js';
import { TestOAuthClient } from '../support/oauthClient.js';
import { postMcp, REDIRECT, tokenFor, whoami } from './rawMcp.js';
import { type Stack, startStack } from './stack.js';
/** Per person and app: a burst of 5, one token back a minute (nothing refills while the test runs). */
const BURST = 5;
/** Per app, all its people together, where an app has a shared bucket: 8. */
const CLIENT_BURST = 8;
/** The app an operator names (MCP_LIMITED_CLIENT_IDS): made at Hydra's admin API before our server starts. */
const NAMED = 'issue-26-named-app';

/**
 * Per-client fair use (issue 26 #8), against the real Ory Hydra and our
 * server (stateless Streamable HTTP, so each call is one request): a shared
 * bucket per app lets a few of its users lock every other user of that app
 * out (self-registration is open, and a public client's id is public), so an
 * app has one only when the operator names it.
 */
describe('issue 26 #8: per-client limits apply only to the clients an operator names (real Hydra)', () => {
  let stack: Stack;
  let n = 0;

  beforeAll(async () => {
    stack = await startStack({
      accessTokenStrategy: 'jwt',
      database: 'sqlite',
      appEnv: async (base, _dir, hydra) => {
        // A public client as our /register makes them (every scope, our resource URLs as its audience).
        const created = await fetch(`${hydra.adminUrl}/admin/clients`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            client_id: NAMED,
            client_name: 'A named app',
            redirect_uris: [REDIRECT],
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: 'none',
            scope: REGISTRABLE_SCOPES.join(' '),
            audience: [`${base}/mcp`, `${base}/sse`],
          }),
        });
        expect(created.status, await created.clone().text()).toBe(201);
        return {
          MCP_STATELESS: 'true',
          MCP_REQUESTS_PER_MINUTE: '1',
          MCP_BURST: String(BURST),
          MCP_CLIENT_REQUESTS_PER_MINUTE: '1',
          MCP_CLIENT_BURST: String(CLIENT_BURST),
          MCP_LIMITED_CLIENT_IDS: NAMED,
        };
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** Three people of one app: each their own token, all with the app's client id. */
  async function threeUsersOf(clientId?: string) {
    const first = new TestOAuthClient(REDIRECT);
    if (clientId) first.saveClientInformation({ client_id: clientId });
    const tokens: string[] = [];
    for (const name of ['heavy-a', 'heavy-b', 'light']) {
      const user = await stack.addUser(`${name}-${++n}@example.com`, `${name} password here`);
      const oauth = tokens.length === 0 ? first : new TestOAuthClient(REDIRECT);
      if (oauth !== first) oauth.saveClientInformation(first.clientInformation()!);
      tokens.push(await tokenFor(stack, user, oauth));
    }
    expect(first.clientInformation()!.client_id).toBe(clientId ?? first.clientInformation()!.client_id);
    return tokens as [string, string, string];
  }
  const headers = { 'mcp-protocol-version': '2025-06-18' };
  /** Calls until refused (at most `max`); the statuses and the refusal's `data.limit`. */
  async function callUntilRefused(token: string, max = BURST + 3) {
    const statuses: number[] = [];
    for (let i = 0; i < max; i++) {
      const r = await postMcp(stack, token, whoami(i), headers);
      statuses.push(r.status);
      if (r.status === 429) return { statuses, limit: r.messages[0].error.data.limit as string };
    }
    return { statuses, limit: undefined };
  }

  it('issue 26 #8: under the default policy two heavy users of one app cannot get a third user of the same app refused', async () => {
    const [a, b, light] = await threeUsersOf();
    const heavy = [await callUntilRefused(a), await callUntilRefused(b)];
    // 2 × 5 > 8: had the app a shared bucket, it would be empty now.
    const third = await postMcp(stack, light, whoami(1), headers);
    expect(third.status, third.body).toBe(200);
    // Each heavy user spent their own burst and was refused by their own bucket, never the app's.
    for (const h of heavy) expect(h).toEqual({ statuses: [...Array<number>(BURST).fill(200), 429], limit: 'principal' });
  });

  it('issue 26 #8: an operator-named app keeps its shared bucket: its users together get its burst, then all of them are refused by it', async () => {
    const [a, b, light] = await threeUsersOf(NAMED);
    expect(await callUntilRefused(a)).toEqual({ statuses: [...Array<number>(BURST).fill(200), 429], limit: 'principal' });
    expect(await callUntilRefused(b)).toEqual({ statuses: [...Array<number>(CLIENT_BURST - BURST).fill(200), 429], limit: 'client' });
    const third = await postMcp(stack, light, whoami(1), headers);
    expect(third.status).toBe(429);
    expect(third.messages[0]).toMatchObject({ error: { code: 429, data: { limit: 'client', burst: CLIENT_BURST } } });
  });
});
