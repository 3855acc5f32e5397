/**
 * Traces end to end (issue 30 #4 and its proof): our server (in this
 * process, tracing started as an entry point starts it, from OTEL_* only),
 * its real Ory Hydra, and a SECOND real Hydra as a connected-account
 * provider, all exporting to a real Jaeger (v1.75.0, the v2 all-in-one, on
 * loopback), read back through Jaeger's query API. Our spans also go to an
 * in-memory exporter behind the same scrubbing, which is searched for every
 * secret the flows handled.
 */
import { writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { oryTracingEnv } from '../../src/tracing/oryTracing.js';
import { startTracing, type Tracing } from '../../src/tracing/startTracing.js';
import { Browser } from '../support/browser.js';
import { TestOAuthClient } from '../support/oauthClient.js';
import { type JaegerSpan, type JaegerTrace, type RunningJaeger, startJaeger } from '../support/jaeger.js';
import { connectInBrowser, upstreamMeTool } from './connections/helpers.js';
import { REDIRECT, tokenFor } from './rawMcp.js';
import { type Stack, startStack, type TestUser } from './stack.js';
import { startUpstream, type Upstream } from './upstream.js';
import { REVISION } from './v2Client.js';

const SERVICE = 'hydra-mcp-e2e';
/** The upstream token lives this long, so a later call must refresh it at the provider's token endpoint. */
const UPSTREAM_TTL_SECONDS = 4;
const ARGUMENT = `argument-${randomBytes(6).toString('hex')}`;

let apiUrl = '';
const upstreamMe = upstreamMeTool(() => apiUrl);

/** One 2026-07-28 tools/call (no session: the token's first and only use is this request). */
async function callTool(stack: Stack, token: string, name: string, args: Record<string, unknown>) {
  const res = await fetch(stack.mcpUrl, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: `Bearer ${token}`,
      'mcp-protocol-version': REVISION,
      'mcp-method': 'tools/call',
      'mcp-name': name,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: args, _meta: { 'io.modelcontextprotocol/protocolVersion': REVISION, 'io.modelcontextprotocol/clientCapabilities': {} } } }),
  });
  return { status: res.status, text: await res.text() };
}

const tag = (span: JaegerSpan, key: string) => span.tags.find((t) => t.key === key)?.value;
const serviceOf = (trace: JaegerTrace, span: JaegerSpan) => trace.processes[span.processID]?.serviceName;
const parentOf = (span: JaegerSpan) => span.references.find((r) => r.refType === 'CHILD_OF')?.spanID;

let jaeger: RunningJaeger;
let tracing: Tracing;
const memory = new InMemorySpanExporter();
/** Every token and secret the flows below handle, for the final search. */
const secrets: string[] = [ARGUMENT];

beforeAll(async () => {
  jaeger = await startJaeger();
  // As an operator sets it: one endpoint for all three.
  tracing = await startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpUrl, OTEL_SERVICE_NAME: SERVICE }, { exporters: [memory] });
}, 600_000);
afterAll(async () => {
  await tracing?.shutdown();
  await jaeger?.stop();
});

/** Our spans of the latest request whose span is `name`, from memory (ended, scrubbed, as exported). */
function ourTrace(name: string): ReadableSpan[] {
  const mine = memory.getFinishedSpans().filter((s) => s.name === name).at(-1);
  expect(mine, `our span "${name}"; have ${[...new Set(memory.getFinishedSpans().map((s) => s.name))].join(', ')}`).toBeDefined();
  return memory.getFinishedSpans().filter((s) => s.spanContext().traceId === mine!.spanContext().traceId);
}

/** The trace from Jaeger once `ready` holds for it (every exporter sends in batches: ours, Hydra's, Kratos's). */
async function fromJaeger(traceId: string, ready: (t: JaegerTrace) => boolean): Promise<JaegerTrace> {
  await tracing.flush();
  let found: JaegerTrace | undefined;
  for (let i = 0; i < 120; i++) {
    found = await jaeger.trace(traceId);
    if (found && ready(found)) return found;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`trace ${traceId} in Jaeger is not complete: ${JSON.stringify(found?.spans.map((s) => `${serviceOf(found!, s)}: ${s.operationName}`))}\n${jaeger.log.join('\n')}`);
}

/** The spans of `service` in `trace` whose parent is `parent` (a span of another service: the wire was crossed). */
const childrenAt = (trace: JaegerTrace, service: string, parent: JaegerSpan) => trace.spans.filter((s) => serviceOf(trace, s) === service && parentOf(s) === parent.spanID);

describe('traces across our server, Hydra and a provider, in a real Jaeger', () => {
  let upstream: Upstream;
  let stack: Stack;
  let alice: TestUser;
  let upstreamSecret = '';

  beforeAll(async () => {
    upstream = await startUpstream({ accessTokenTtl: `${UPSTREAM_TTL_SECONDS}s`, env: oryTracingEnv(tracing.settings, 'upstream-hydra') });
    apiUrl = upstream.apiUrl;
    stack = await startStack({
      accessTokenStrategy: 'opaque',
      database: 'sqlite',
      // Cached for a minute: a token's first check is the cold one, its next is not.
      introspectionCacheSeconds: 60,
      hydraEnv: oryTracingEnv(tracing.settings, 'hydra'),
      extraTools: [upstreamMe as never],
      appEnv: async (base, dir) => {
        const c = await upstream.registerClient({ redirectUris: [`${base}/account/connections/upstream/callback`], scope: 'offline_access profile' });
        upstreamSecret = c.clientSecret;
        const file = join(dir, 'connections.json');
        await writeFile(file, JSON.stringify({ providers: { upstream: { displayName: 'Upstream', issuer: upstream.issuer, clientId: c.clientId, clientSecret: c.clientSecret, scopes: ['offline_access', 'profile'] } } }));
        return { CONNECTIONS_FILE: file, CONNECTION_KEYS: `k1:${randomBytes(32).toString('base64url')}` };
      },
    });
    alice = await stack.addUser('alice@example.com', 'copper lantern 2026');
    secrets.push(alice.sub, alice.password, upstreamSecret);
  }, 600_000);
  afterAll(async () => {
    await stack?.stop();
    await upstream?.stop();
  });

  it('a tools/call whose token cache is cold is ONE trace: our request, the token check, the introspection, and Hydra serving it', async () => {
    const token = await tokenFor(stack, alice);
    secrets.push(token);
    // On the way: the sign-in form's POST (its body parsed first) accepted the login at Hydra, in its own trace with Hydra's span.
    const signIn = ourTrace('POST /login');
    const acceptOf = (t: JaegerTrace) => t.spans.find((x) => serviceOf(t, x) === SERVICE && /\/admin\/oauth2\/auth\/requests\/login\/accept\?login_challenge=_$/.test(String(tag(x, 'url.full'))));
    const signInTrace = await fromJaeger(signIn[0]!.spanContext().traceId, (t) => {
      const accept = acceptOf(t);
      return accept !== undefined && childrenAt(t, 'hydra', accept).length > 0;
    });
    expect(childrenAt(signInTrace, 'hydra', acceptOf(signInTrace)!).map((x) => x.operationName)).toEqual(['/admin/oauth2/auth/requests/login/accept']);

    const first = await callTool(stack, token, 'notes_add', { title: ARGUMENT, body: ARGUMENT });
    expect(first.status, first.text).toBe(200);
    const ours = ourTrace('tools/call notes_add');
    const traceId = ours[0]!.spanContext().traceId;

    // Found through the query API as an operator would: by service and operation.
    await tracing.flush();
    let listed: JaegerTrace[] = [];
    for (let i = 0; i < 40 && !listed.some((t) => t.traceID === traceId); i++) {
      listed = await jaeger.traces(SERVICE, { operation: 'tools/call notes_add' });
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(listed.map((t) => t.traceID)).toContain(traceId);

    const introspectionOf = (t: JaegerTrace) => t.spans.find((x) => serviceOf(t, x) === SERVICE && String(tag(x, 'url.full')).endsWith('/admin/oauth2/introspect'));
    // Complete once Hydra's server span for the introspection and its fosite span are in.
    const trace = await fromJaeger(traceId, (t) => {
      const call = introspectionOf(t);
      const server = call && childrenAt(t, 'hydra', call)[0];
      return server !== undefined && childrenAt(t, 'hydra', server).length > 0;
    });
    const named = (service: string, op: string | RegExp) => trace.spans.filter((s) => serviceOf(trace, s) === service && (typeof op === 'string' ? s.operationName === op : op.test(s.operationName)));
    const [request] = named(SERVICE, 'POST /mcp');
    const [check] = named(SERVICE, 'verify access token');
    const [mcp] = named(SERVICE, 'tools/call notes_add');
    const [tool] = named(SERVICE, 'execute_tool notes_add');
    const [store] = named(SERVICE, 'add notes');
    const introspection = introspectionOf(trace);
    for (const span of [request, check, mcp, tool, store, introspection]) expect(span, trace.spans.map((s) => s.operationName).join(', ')).toBeDefined();
    expect(parentOf(check!)).toBe(request!.spanID);
    expect(parentOf(introspection!)).toBe(check!.spanID);
    expect(parentOf(mcp!)).toBe(request!.spanID);
    expect(parentOf(tool!)).toBe(mcp!.spanID);
    expect(parentOf(store!)).toBe(tool!.spanID);
    expect(tag(mcp!, 'gen_ai.tool.name')).toBe('notes_add');
    // Hydra's own span for the introspection, a child of our client span: traceparent crossed the wire.
    const atHydra = childrenAt(trace, 'hydra', introspection!);
    expect(atHydra.map((s) => s.operationName)).toEqual(['/admin/oauth2/introspect']);
    // ...and Hydra's own work under it: fosite's introspection, its storage.
    expect(childrenAt(trace, 'hydra', atHydra[0]!).map((s) => s.operationName)).toContain('Fosite.IntrospectToken');
    expect(new Set(trace.spans.map((s) => s.traceID))).toEqual(new Set([traceId]));

    // The same token again: answered from the cache, no introspection, no Hydra in the trace.
    memory.reset();
    expect((await callTool(stack, token, 'notes_list', {})).status).toBe(200);
    const warm = ourTrace('tools/call notes_list');
    expect(warm.map((s) => s.name)).toContain('verify access token');
    expect(warm.some((s) => String(s.attributes['url.full']).endsWith('/admin/oauth2/introspect'))).toBe(false);
  });

  it("a connected-account tool call's trace holds the provider's token request (the refresh), and the provider's Hydra serving it", async () => {
    const browser = new Browser();
    const done = await connectInBrowser(browser, `${stack.baseUrl}/account/connections/upstream/connect`, alice, 'alice-upstream');
    expect(done.text()).toContain('Upstream connected');
    const token = await tokenFor(stack, alice);
    secrets.push(token);
    // Past the upstream token's life: the call refreshes it first.
    await new Promise((r) => setTimeout(r, UPSTREAM_TTL_SECONDS * 1000 + 500));
    memory.reset();
    const res = await callTool(stack, token, 'upstream_me', {});
    expect(res.status, res.text).toBe(200);
    expect(res.text).toContain('alice-upstream');
    const traceId = ourTrace('tools/call upstream_me')[0]!.spanContext().traceId;
    const tokenRequestOf = (t: JaegerTrace) => t.spans.find((x) => serviceOf(t, x) === SERVICE && tag(x, 'url.full') === `${upstream.publicUrl}/oauth2/token`);
    const trace = await fromJaeger(traceId, (t) => {
      const call = tokenRequestOf(t);
      return call !== undefined && childrenAt(t, 'upstream-hydra', call).length > 0;
    });
    const [tool] = trace.spans.filter((s) => s.operationName === 'execute_tool upstream_me');
    const tokenRequest = tokenRequestOf(trace);
    expect(tokenRequest, trace.spans.map((s) => `${serviceOf(trace, s)}: ${s.operationName} ${tag(s, 'url.full') ?? ''}`).join('\n')).toBeDefined();
    // Under the tool (through the credential service), and served by the provider's Hydra in the same trace.
    const ancestors = (span: JaegerSpan): string[] => {
      const parent = trace.spans.find((s) => s.spanID === parentOf(span));
      return parent ? [parent.spanID, ...ancestors(parent)] : [];
    };
    expect(ancestors(tokenRequest!)).toContain(tool!.spanID);
    expect(childrenAt(trace, 'upstream-hydra', tokenRequest!).map((s) => s.operationName)).toEqual(['/oauth2/token']);
    // The person's call to the upstream API is a span of the tool too.
    expect(trace.spans.some((s) => tag(s, 'url.full') === apiUrl && ancestors(s).includes(tool!.spanID))).toBe(true);
  });

});

describe('Kratos in the same traces (IDENTITY=kratos)', () => {
  let stack: Stack;
  const person = { email: 'ada@example.com', password: 'analytical engine 1843', name: 'Ada Lovelace' };

  beforeAll(async () => {
    stack = await startStack({
      accessTokenStrategy: 'opaque',
      database: 'sqlite',
      identity: 'kratos',
      hydraEnv: oryTracingEnv(tracing.settings, 'hydra'),
      kratosEnv: oryTracingEnv(tracing.settings, 'kratos'),
    });
    secrets.push(person.password);
  }, 600_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it("a sign-in through Kratos: our /login asks Kratos for the session, and Kratos's own span is in that trace", async () => {
    const oauth = new TestOAuthClient(REDIRECT);
    const first = new StreamableHTTPClientTransport(stack.mcpUrl, { authProvider: oauth });
    await expect(new Client({ name: 'e2e-tracing', version: '1.0.0' }).connect(first)).rejects.toBeInstanceOf(UnauthorizedError);
    const atClient = (u: URL) => u.href.startsWith(oauth.redirectUrl);
    const browser = new Browser();
    let page = await browser.open(oauth.authorizationUrl!.href, atClient);
    expect(page.url.pathname, page.text()).toBe('/kratos/login');
    const register = page.doc.querySelectorAll('a').find((a) => a.textContent.trim() === 'Create an account');
    page = await browser.open(new URL(register!.getAttribute('href')!, page.url).href, atClient);
    memory.reset();
    // Posted to Kratos itself, which sends the browser back to our /login with its session cookie.
    page = await page.submit('Sign up', { fill: { Email: person.email, Name: person.name, Password: person.password } }, atClient);
    expect(page.url.pathname, page.text()).toBe('/consent');
    const whoamiOf = (t: JaegerTrace) => t.spans.find((x) => serviceOf(t, x) === SERVICE && String(tag(x, 'url.full')) === `${stack.kratos!.publicUrl}/sessions/whoami`);
    const login = ourTrace('GET /login');
    const trace = await fromJaeger(login[0]!.spanContext().traceId, (t) => {
      const call = whoamiOf(t);
      return call !== undefined && childrenAt(t, 'kratos', call).length > 0;
    });
    const [request] = trace.spans.filter((x) => serviceOf(trace, x) === SERVICE && x.operationName === 'GET /login');
    const whoami = whoamiOf(trace)!;
    expect(parentOf(whoami)).toBe(request!.spanID);
    expect(childrenAt(trace, 'kratos', whoami).map((x) => x.operationName)).toEqual(['/sessions/whoami']);
    // The same request accepts the sign-in at Hydra's admin API: Hydra's span in the same trace too.
    const accept = trace.spans.find((x) => serviceOf(trace, x) === SERVICE && /\/admin\/oauth2\/auth\/requests\/login\/accept\?login_challenge=_$/.test(String(tag(x, 'url.full'))));
    expect(accept, 'the accept call, its challenge scrubbed').toBeDefined();
    const back = await page.submit('Allow', {}, atClient);
    await first.finishAuth(back.url.searchParams.get('code')!);
    const token = oauth.tokens()!.access_token;
    const me = await callTool(stack, token, 'whoami', {});
    const sub = (JSON.parse((JSON.parse(me.text.split('\n').find((l) => l.startsWith('data: '))?.slice(6) ?? me.text) as { result: { content: { text: string }[] } }).result.content[0]!.text) as { sub: string }).sub;
    expect(sub).toMatch(/^[0-9a-f-]{36}$/);
    secrets.push(token, sub);
  });
});

describe('what our spans never hold', () => {
  it('no token, secret, password, sub or argument value in any span we exported, through every flow above', async () => {
    await tracing.flush();
    // What Jaeger holds of our service, and what the in-memory exporter kept of the last test.
    const stored = await jaeger.traces(SERVICE, { limit: 1000 });
    const ours = stored.flatMap((t) => t.spans.filter((s) => serviceOf(t, s) === SERVICE).map((s) => ({ name: s.operationName, tags: s.tags })));
    expect(ours.length).toBeGreaterThan(20);
    const text = JSON.stringify(ours) + JSON.stringify(memory.getFinishedSpans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })));
    expect(secrets.filter(Boolean).length).toBeGreaterThanOrEqual(6);
    for (const secret of secrets.filter(Boolean)) expect(text, 'a secret in a span').not.toContain(secret);
    // Hydra's and Kratos's opaque tokens and codes, whatever their value: none at all.
    expect(text).not.toMatch(/ory_(at|rt|ac)_/);
    // The sign-in, consent and connect pages were traced, under their route patterns.
    const names = new Set(ours.map((s) => s.name));
    for (const route of ['POST /login', 'POST /consent', 'GET /account/connections/:provider/callback', 'POST /token']) expect(names, [...names].join(', ')).toContain(route);
  });
});
