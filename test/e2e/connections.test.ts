/**
 * Connected accounts end to end (issue 14): our server with its real Ory
 * Hydra, and a SECOND real Ory Hydra as the third-party provider, with its
 * own login and consent and an upstream API that checks its tokens by
 * introspection (test/e2e/upstream.ts). A tool that needs `upstream` asks the
 * person to connect through URL-mode elicitation (MCP 2025-11-25
 * `elicitation/create` mode "url" with `notifications/elicitation/complete`;
 * 2026-07-28 as an `input_required` result), and completes once they have.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client as V2Client } from '@modelcontextprotocol/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { createSealer, parseConnectionKeys } from '../../src/connections/sealing.js';
import { WAITERS_PER_PERSON } from '../../src/mcp/connectionPrompt.js';
import { connectionsStore } from '../../src/store/connectionsStore.js';
import { openDatabase } from '../../src/store/database.js';
import { Browser, type Page } from '../support/browser.js';
import { connectInBrowser, elicitingClient, upstreamMeTool } from './connections/helpers.js';
import { call, connectAs } from './flow.js';
import { type Stack, startStack, type TestUser } from './stack.js';
import { startUpstream, type Upstream } from './upstream.js';
import { connectV2, REVISION } from './v2Client.js';

/** Short upstream token lifetime, so a test can watch a token expire and be refreshed. */
const TTL_SECONDS = 8;

let apiUrl = '';
const KEYS = `k1:${randomBytes(32).toString('base64url')}`;
/** The tool under test, asking the upstream API this suite started. */
const upstreamMe = upstreamMeTool(() => apiUrl);

async function metric(stack: Stack, line: string): Promise<number> {
  const text = await (await fetch(stack.server.metricsUrl!)).text();
  const hit = text.split('\n').find((l) => l.startsWith(line));
  return hit ? Number(hit.slice(hit.lastIndexOf(' ') + 1)) : 0;
}

describe('connected accounts against a second real Hydra as the provider', () => {
  let upstream: Upstream;
  let stack: Stack;
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    upstream = await startUpstream({ accessTokenTtl: `${TTL_SECONDS}s`, storage: 'file' });
    apiUrl = upstream.apiUrl;
    stack = await startStack({
      accessTokenStrategy: 'jwt',
      database: 'sqlite',
      extraTools: [upstreamMe as never],
      appEnv: async (base, dir) => {
        const c = await upstream.registerClient({ redirectUris: [`${base}/account/connections/upstream/callback`], scope: 'offline_access profile' });
        const file = join(dir, 'connections.json');
        await writeFile(
          file,
          JSON.stringify({ providers: { upstream: { displayName: 'Upstream', issuer: upstream.issuer, clientId: c.clientId, clientSecret: c.clientSecret, scopes: ['offline_access', 'profile'] } } }),
        );
        return { CONNECTIONS_FILE: file, CONNECTION_KEYS: KEYS, CONNECT_WAIT_SECONDS: '30' };
      },
    });
    alice = await stack.addUser('alice@example.com', 'copper lantern 2026');
    bob = await stack.addUser('bob@example.com', 'silver harbour 2026');
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    await upstream?.stop();
  });

  it('2025 session: the call asks to connect (URL elicitation), the person connects at the provider, the same call completes', async () => {
    const browser = new Browser();
    const completed: string[] = [];
    let connecting: Promise<Page> | undefined;
    const seen: string[] = [];
    const { client } = await connectAs(stack, alice, {
      browser,
      client: elicitingClient(async (url, id) => {
        seen.push(url, id);
        // The client shows the link; the person opens it (after the client's "accept").
        connecting = connectInBrowser(browser, url, alice, 'alice-upstream');
        return 'accept';
      }, completed),
    });
    try {
      const me = await call(client, 'upstream_me');
      expect(me.isError, me.text).toBe(false);
      expect(me.value).toMatchObject({ sub: 'alice-upstream' });
      const done = await connecting!;
      expect(done.text()).toContain('Upstream connected');
      // The link names neither the person nor the provider's tokens; the completion names the elicitation.
      expect(seen[0]).toMatch(new RegExp(`^${stack.baseUrl}/account/connections/upstream/connect\\?e=[A-Za-z0-9_-]{22}\\.[A-Za-z0-9_-]{32}$`));
      expect(seen[0]).not.toContain(alice.sub);
      expect(completed).toEqual([seen[1]]);
      // Connected now: the next call needs no elicitation.
      expect((await call(client, 'upstream_me')).value).toMatchObject({ sub: 'alice-upstream' });
      expect(seen).toHaveLength(2);
    } finally {
      await client.close();
    }
  });

  it('2026-07-28 (SDK v2 client pinned): input_required with a URL elicitation, then the retried call completes', async () => {
    const browser = new Browser();
    let connecting: Promise<Page> | undefined;
    const { client } = await connectV2(stack, bob, { pin: REVISION }, {
      client: () => {
        const c = new V2Client(
          { name: 'e2e-v2-connect', version: '1.0.0' },
          { capabilities: { elicitation: { url: {} } }, versionNegotiation: { mode: { pin: REVISION } } },
        );
        c.setRequestHandler('elicitation/create', async (req) => {
          const p = req.params as { mode?: string; url?: string };
          expect(p.mode).toBe('url');
          connecting = connectInBrowser(browser, p.url!, bob, 'bob-upstream');
          return { action: 'accept' };
        });
        return c;
      },
    });
    try {
      expect(client.getProtocolEra()).toBe('modern');
      const result = await client.callTool({ name: 'upstream_me', arguments: {} });
      const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
      expect(result.isError, text).not.toBe(true);
      expect(JSON.parse(text)).toMatchObject({ sub: 'bob-upstream' });
      expect((await connecting!).text()).toContain('Upstream connected');
    } finally {
      await client.close();
    }
  });

  it("two people's upstream tokens never cross", async () => {
    const a = await connectAs(stack, alice);
    try {
      // No elicitation capability needed: both are connected already.
      expect((await call(a.client, 'upstream_me')).value).toMatchObject({ sub: 'alice-upstream' });
    } finally {
      await a.close();
    }
    const b = await connectAs(stack, bob);
    try {
      expect((await call(b.client, 'upstream_me')).value).toMatchObject({ sub: 'bob-upstream' });
    } finally {
      await b.close();
    }
  });

  it('the upstream access token expires and is refreshed (rotation honoured), without asking the person', async () => {
    const before = await metric(stack, 'connected_account_uses_total{provider="upstream",outcome="refreshed"}');
    await new Promise((r) => setTimeout(r, TTL_SECONDS * 1000));
    const a = await connectAs(stack, alice);
    try {
      expect((await call(a.client, 'upstream_me')).value).toMatchObject({ sub: 'alice-upstream' });
      expect((await call(a.client, 'upstream_me')).value).toMatchObject({ sub: 'alice-upstream' });
    } finally {
      await a.close();
    }
    expect(await metric(stack, 'connected_account_uses_total{provider="upstream",outcome="refreshed"}')).toBe(before + 1);
  });

  it('a client without URL elicitation gets a tool error carrying the link and what to do', async () => {
    const carol = await stack.addUser('carol@example.com', 'plain window 2026');
    const c = await connectAs(stack, carol);
    try {
      const r = await call(c.client, 'upstream_me');
      expect(r.isError).toBe(true);
      expect(r.text).toMatch(new RegExp(`^connection_required: upstream_me needs access to your Upstream account\\. Open ${stack.baseUrl}/account/connections/upstream/connect\\?e=\\S+ in your browser, connect Upstream, then call upstream_me again\\.$`));
    } finally {
      await c.close();
    }
  });

  it('the account page lists the connection; disconnecting revokes at the provider and the tool asks again (declined here)', async () => {
    const browser = new Browser();
    const asked: string[] = [];
    const { client } = await connectAs(stack, alice, { browser, client: elicitingClient(async (url) => (asked.push(url), 'decline'), []) });
    try {
      let page = await browser.open(`${stack.baseUrl}/account`);
      if (page.text().includes('Sign in to see')) page = await page.submit('Sign in', { fill: { Email: alice.email, Password: alice.password } });
      expect(page.text()).toMatch(/Connected services .*Upstream connected · since \d{4}-\d{2}-\d{2}/);
      page = await page.submit('Disconnect');
      expect(page.url.pathname + page.url.search).toBe('/account?done=disconnected');
      expect(page.text()).toContain('Upstream not connected');
      const r = await call(client, 'upstream_me');
      expect(r.isError).toBe(true);
      expect(r.text).toBe('upstream_me was not run: connecting Upstream was declined.');
      expect(asked).toHaveLength(1);
    } finally {
      await client.close();
    }
  });

  it('a grant revoked at the provider: the refresh is refused, the connection is marked, the person is asked again', async () => {
    await upstream.revokeConsent('bob-upstream');
    await new Promise((r) => setTimeout(r, TTL_SECONDS * 1000));
    const asked: string[] = [];
    const { client } = await connectAs(stack, bob, { client: elicitingClient(async (url) => (asked.push(url), 'cancel'), []) });
    try {
      const r = await call(client, 'upstream_me');
      expect(r.text).toBe('upstream_me was not run: connecting Upstream was cancelled.');
      expect(asked).toHaveLength(1);
    } finally {
      await client.close();
    }
    expect(await metric(stack, 'connected_account_uses_total{provider="upstream",outcome="reconnect"}')).toBeGreaterThanOrEqual(1);
  });

  it('deleting the person revokes their connections at the provider (RFC 7009) and deletes the rows', async () => {
    // Each step named, so a run that stalls (seen once in a fresh-clone run, not reproduced since) says where.
    const within = <T>(step: string, p: Promise<T>, ms = 25_000): Promise<T> =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`stalled: ${step} (${ms} ms)`)), ms).unref())]);
    const erin = await within('add user', stack.addUser('erin@example.com', 'garnet meadow 2026'));
    const browser = new Browser();
    let connecting: Promise<Page> | undefined;
    const { client } = await within(
      'connect the MCP client',
      connectAs(stack, erin, {
        browser,
        client: elicitingClient(async (url) => ((connecting = connectInBrowser(browser, url, erin, 'erin-upstream')), 'accept'), []),
      }),
    );
    try {
      expect((await within('upstream_me with the connect prompt', call(client, 'upstream_me'))).value).toMatchObject({ sub: 'erin-upstream' });
      await within('the browser connect flow', connecting!);
    } finally {
      await within('close the MCP client', client.close());
    }
    // The token as stored (opened with the run's key): it works at the provider until the removal.
    const db = await openDatabase(loadConfig(stack.env).database);
    try {
      const row = await connectionsStore(db, 'sqlite').get(erin.sub, 'upstream');
      const { accessToken } = await createSealer(parseConnectionKeys(KEYS)).open(row!.sealed, { sub: erin.sub, provider: 'upstream' });
      const at = () => fetch(apiUrl, { headers: { authorization: `Bearer ${accessToken}` } }).then((r) => r.status);
      expect(await within('the provider API before', at())).toBe(200);
      const report = await within('removeAccount', stack.server.removeAccount({ sub: erin.sub }));
      expect(report.deleted).toMatchObject({ connections: 1 });
      expect(await within('the provider API after', at()), 'revoked at the provider').toBe(401);
      expect(await connectionsStore(db, 'sqlite').get(erin.sub, 'upstream')).toBeUndefined();
    } finally {
      await db.destroy();
    }
  });

  /** A 2026-07-28 client in manual multi-round-trip mode: the test, not the SDK, answers `input_required` and echoes the requestState. */
  async function manualV2(user: TestUser) {
    const { client } = await connectV2(stack, user, { pin: REVISION }, {
      client: () =>
        new V2Client({ name: 'e2e-v2-manual', version: '1.0.0' }, { capabilities: { elicitation: { url: {} } }, versionNegotiation: { mode: { pin: REVISION } }, inputRequired: { autoFulfill: false } }),
    });
    type Asked = { resultType?: string; requestState?: string; inputRequests?: Record<string, { params: { url: string } }> };
    return {
      client,
      /** Call the tool without a connection: the input_required answer's requestState and connect link. */
      async ask() {
        const r = (await client.callTool({ name: 'upstream_me', arguments: {} }, { allowInputRequired: true })) as unknown as Asked;
        expect(r.resultType).toBe('input_required');
        return { requestState: r.requestState!, url: r.inputRequests!.connect!.params.url };
      },
      /** The retry that answers the elicitation with "accept", echoing `requestState`; the tool result's text. */
      async resume(requestState: string) {
        const r = await client.callTool({ name: 'upstream_me', arguments: {}, requestState, inputResponses: { connect: { action: 'accept' } } } as never);
        return { isError: r.isError === true, text: r.content.map((c) => (c.type === 'text' ? c.text : '')).join('') };
      },
    };
  }

  it('issue 26 #14: a 2026 requestState is single-use: replaying it is refused with a clear error, and nothing waits or runs', async () => {
    const frank = await stack.addUser('frank@example.com', 'linen harbour 2026');
    const v2 = await manualV2(frank);
    try {
      const { requestState, url } = await v2.ask();
      // The first retry waits for the connection; the person connects meanwhile.
      const first = v2.resume(requestState);
      await connectInBrowser(new Browser(), url, frank, 'frank-upstream');
      expect(await first).toEqual({ isError: false, text: expect.stringContaining('"sub":"frank-upstream"') });
      // The same answer again: refused, not run and not waited on.
      expect(await v2.resume(requestState)).toEqual({ isError: true, text: 'upstream_me was not run: this answer to the request to connect Upstream was already used. Call upstream_me again.' });
    } finally {
      await v2.client.close();
    }
  });

  it("issue 26 #14: a person's calls waiting for a connection are bounded; the one over the bound is refused at once, the others complete once they connect", async () => {
    const gina = await stack.addUser('gina@example.com', 'velvet canyon 2026');
    const v2 = await manualV2(gina);
    try {
      // One more requestState than the bound, each from its own call (each single-use, each valid).
      const asked = [];
      for (let i = 0; i <= WAITERS_PER_PERSON; i++) asked.push(await v2.ask());
      const settled: string[] = [];
      const resumes = asked.map(({ requestState }) => v2.resume(requestState).then((r) => (settled.push(r.text), r)));
      // Nothing is connected yet, so the first answer to come back is the refusal.
      await Promise.race(resumes);
      expect(settled).toEqual([`upstream_me was not run: ${WAITERS_PER_PERSON} calls are already waiting for you to connect. Connect Upstream with the link you were given, then call upstream_me again.`]);
      await connectInBrowser(new Browser(), asked[0]!.url, gina, 'gina-upstream');
      const results = await Promise.all(resumes);
      expect(results.filter((r) => !r.isError).map((r) => JSON.parse(r.text) as { sub: string })).toEqual(Array(WAITERS_PER_PERSON).fill(expect.objectContaining({ sub: 'gina-upstream' })));
    } finally {
      await v2.client.close();
    }
  });
});
