/**
 * `npm run new-tool -- <name> [scope ...] [--list | --credential <provider>]`:
 * write tools/<name>.ts and test/tools/<name>.test.ts from a template, ready
 * to edit and run. `--list` makes a list-shaped tool: pages of the caller's
 * records with signed cursors. `--credential github` makes a tool that calls
 * the person's connected account at a provider from CONNECTIONS_FILE.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { SUPPORTED_SCOPES } from '../src/auth/scopes.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const NAME = /^[a-z][a-z0-9_]{0,63}$/;
// As CONNECTIONS_FILE names providers (src/connections/providers.ts) and the registry checks `credentials`.
const PROVIDER = /^[a-z][a-z0-9_-]{0,31}$/;
const USAGE = 'usage: npm run new-tool -- <name> [scope ...] [--list | --credential <provider>]   e.g. npm run new-tool -- notes_count notes:read';

function fail(message: string, code = 1): never {
  console.error(`error: ${message}`);
  process.exit(code);
}

const OPTIONS = { list: { type: 'boolean' }, credential: { type: 'string' } } as const;
const args = process.argv.slice(2);
// Every unknown option named at once (parseArgs stops at the first).
const badFlags = args.filter((a) => a.startsWith('--') && !Object.hasOwn(OPTIONS, a.slice(2).split('=')[0]!));
if (badFlags.length) {
  fail(`unknown option(s) ${badFlags.join(', ')}; the options are --list (a list-shaped tool with cursors) and --credential <provider> (a tool that calls a connected account)`, 2);
}
let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
try {
  parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
} catch (e) {
  const missing = (e as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && args.some((a) => a === '--credential');
  fail(missing ? '--credential needs a provider name from CONNECTIONS_FILE, e.g. --credential github' : `${(e as Error).message}\n${USAGE}`, 2);
}
const listShaped = parsed.values.list ?? false;
const provider = parsed.values.credential;
if (listShaped && provider !== undefined) fail('choose one of --list and --credential: a tool is either list-shaped or calls a connected account', 2);
if (provider !== undefined && !PROVIDER.test(provider)) {
  fail(`provider name ${JSON.stringify(provider)} must be 1 to 32 lower case letters, digits, "_" or "-", starting with a letter, as named in CONNECTIONS_FILE (e.g. github)`);
}
const [name, ...scopes] = parsed.positionals;
if (!name) fail(USAGE, 2);
if (!NAME.test(name)) fail(`tool name "${name}" must be lower case letters, digits and underscores, starting with a letter`);
const unknown = scopes.filter((s) => !SUPPORTED_SCOPES.includes(s));
if (unknown.length) fail(`unknown scope(s) ${unknown.join(', ')}; known: ${SUPPORTED_SCOPES.join(', ')} (add new ones to src/auth/scopes.ts)`);

const toolPath = `tools/${name}.ts`;
const testPath = `test/tools/${name}.test.ts`;
for (const p of [toolPath, testPath]) if (existsSync(ROOT + p)) fail(`${p} already exists`);

const title = name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
const scopeList = scopes.map((s) => `'${s}'`).join(', ');

const [toolSource, testSource] = provider !== undefined ? credentialTemplates(provider) : listShaped ? listTemplates() : callTemplates();
writeFileSync(ROOT + toolPath, toolSource);
writeFileSync(ROOT + testPath, testSource);

console.log(`Created ${toolPath} and ${testPath}.
Next: edit the description, input and handler; run  npx vitest run ${testPath}
then restart npm start: the tool is found automatically and listed to clients.`);
if (provider !== undefined) {
  console.log(`Configure provider "${provider}" in CONNECTIONS_FILE: without that file the tool is not served, and a file without "${provider}" stops the server at start-up.`);
}

/** A tool that does one thing per call (it counts its own calls in the caller's storage). */
function callTemplates(): [string, string] {
  return [
    `import { z } from 'zod';
import { defineTool } from '../src/tools/contract.js';

export default defineTool({
  name: '${name}',
  title: '${title}',
  // Written for the model that decides whether to call this tool.
  description: 'TODO: say what ${name} does and when to use it.',
  // Arguments, validated before the handler runs; .describe() helps the model fill them in.
  input: {
    text: z.string().min(1).max(1000).describe('TODO: what this argument is'),
  },
  // Scopes the access token must carry ([] = any signed-in user).
  scopes: [${scopeList}],
  // Who may call it: people only by default. Uncomment to let machine clients
  // (client credentials, no person present) call it too; their data is keyed by their client id.
  // callers: 'people-and-machines',
  annotations: { readOnlyHint: true, openWorldHint: false },
  // ctx.store is scoped to the caller (ctx.principal.sub): it cannot reach other users' data.
  handler: async ({ text }, { principal, store }) => {
    const runs = store.records('${name}');
    const count = ((await runs.get<number>('count')) ?? 0) + 1;
    await runs.put('count', count);
    return { text, calls: count, sub: principal.sub };
  },
});
`,
    testTemplate({
      body: `
  it('answers with the caller\\'s own data', async () => {
    const r = await h.call('${name}', { text: 'hello' }, caller);
    expect(r.isError).toBeFalsy();
    expect(JSON.parse(r.text)).toMatchObject({ text: 'hello', calls: 1, sub: 'user-1' });
  });

  it('refuses input that does not match the schema', async () => {
    const r = await h.call('${name}', { text: '' }, caller);
    expect(r.isError).toBe(true);
    expect(r.text).toContain('text');
  });
`,
    }),
  ];
}

/**
 * A list-shaped tool: one page of the caller's records per call, `limit` and
 * `cursor` in, `nextCursor` out. The cursor holds a keyset position (the last
 * key), signed and bound to the caller and the tool by ctx.cursors.
 */
function listTemplates(): [string, string] {
  return [
    `import { z } from 'zod';
import { defineTool, pageInput } from '../src/tools/contract.js';

// What this tool's cursors carry: the key of the last record on the page (a
// keyset position, never an offset). ctx.cursors signs it for this caller and tool.
const position = z.object({ key: z.string() });

export default defineTool({
  name: '${name}',
  title: '${title}',
  // Written for the model that decides whether to call this tool.
  description: 'TODO: say what ${name} lists. When the result has nextCursor, call again with cursor set to it.',
  // limit (1 to 100, default 20; anything else is an input error) and cursor.
  input: { ...pageInput({ defaultLimit: 20, maxLimit: 100 }) },
  // Scopes the access token must carry ([] = any signed-in user).
  scopes: [${scopeList}],
  // Who may call it: people only by default. Uncomment to let machine clients
  // (client credentials, no person present) call it too; their data is keyed by their client id.
  // callers: 'people-and-machines',
  annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
  handler: async ({ limit, cursor }, { store, cursors }) => {
    // A forged, truncated or another person's or tool's cursor throws a ToolError naming the cursor.
    const from = cursors.open(cursor, position);
    // One keyset read of the caller's own records: the same cost on page 1 and page 1000.
    const page = await store.records('${name}').page({ limit, after: from?.key });
    return {
      items: page.records,
      ...(page.next ? { nextCursor: cursors.seal({ key: page.next }) } : {}),
    };
  },
});
`,
    testTemplate({
      imports: `import { scopedStoreFor } from '../../src/store/scopedStore.js';
`,
      seed: `
    const records = scopedStoreFor(h.db, 'user-1').records('${name}');
    for (const key of ['a', 'b', 'c', 'd', 'e']) await records.put(key, { key });`,
      body: `
  const list = async (args: Record<string, unknown>, who = caller) => {
    const r = await h.call('${name}', args, who);
    expect(r.isError, r.text).toBeFalsy();
    return JSON.parse(r.text) as { items: { key: string }[]; nextCursor?: string };
  };

  it('pages through the caller\\'s records with cursors', async () => {
    const keys: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await list({ limit: 2, ...(cursor ? { cursor } : {}) });
      keys.push(page.items.map((i) => i.key));
      cursor = page.nextCursor;
    } while (cursor && keys.length < 10);
    expect(keys).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
  });

  it('shows another user none of them, and refuses this user\\'s cursor to them', async () => {
    const other = { ...caller, sub: 'user-2' };
    expect(await list({}, other)).toEqual({ items: [] });
    const { nextCursor } = await list({ limit: 1 });
    const r = await h.call('${name}', { cursor: nextCursor }, other);
    expect(r.isError).toBe(true);
    expect(r.text).toMatch(/^invalid_cursor: /);
  });

  it('refuses a page size of 0 as an input error', async () => {
    const r = await h.call('${name}', { limit: 0 }, caller);
    expect(r.isError).toBe(true);
    expect(r.text).toContain('limit');
  });
`,
    }),
  ];
}

/**
 * A tool that calls the person's account at `provider` with the access token
 * they granted (issue 14). A missing or revoked connection never reaches the
 * handler's logic: accessToken() throws, and the server asks the client to
 * send the person to connect, then runs the call again.
 */
function credentialTemplates(provider: string): [string, string] {
  // A name with "-" is not a JavaScript identifier: bracket access then.
  const access = /^[a-z][a-z0-9_]*$/.test(provider) ? `.${provider}` : `['${provider}']`;
  return [
    `import { defineTool, ToolError } from '../src/tools/contract.js';

// TODO: the ${provider} API endpoint this tool calls, e.g. 'https://api.${provider}.example/v1/me'.
const API_URL = 'https://api.example.com/TODO';

export default defineTool({
  name: '${name}',
  title: '${title}',
  // Written for the model that decides whether to call this tool.
  description: 'TODO: say what ${name} does with the person\\'s ${provider} account and when to use it.',
  // Arguments, validated before the handler runs (none yet; add zod fields with .describe()).
  input: {},
  // Scopes the access token must carry ([] = any signed-in user).
  scopes: [${scopeList}],
  // The person's connected ${provider} account (a provider in CONNECTIONS_FILE): ctx.credentials${access}.
  // Tools with credentials are for people only: a machine client has no connected accounts.
  credentials: ['${provider}'],
  annotations: { readOnlyHint: true, openWorldHint: true },
  handler: async (_input, ctx) => {
    // A valid access token for the person calling (refreshed first when it expires soon).
    // Not connected yet, or the grant was revoked at ${provider}? Handled for you: this throws,
    // the client is asked to send the person to connect, and the call runs again once they have.
    const token = await ctx.credentials${access}.accessToken();
    // The token is the person's key to ${provider}: never log it, never return it, never put it in an error.
    const res = await fetch(API_URL, {
      headers: { authorization: \`Bearer \${token}\`, accept: 'application/json' },
      signal: ctx.signal,
    });
    // Say what went wrong without echoing the request (it carries the token).
    if (!res.ok) throw new ToolError(\`${provider} answered HTTP \${res.status}\`);
    const body = (await res.json()) as unknown;
    // TODO: return only what the caller needs from the answer.
    return { result: body };
  },
});
`,
    `import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ToolContext } from '../../src/tools/contract.js';
import tool from '../../tools/${name}.js';

// The handler alone, with a stand-in credential and fetch: connecting, refresh
// and asking the person to connect are the server's (test/connections, test/e2e).
describe('${name}', () => {
  afterEach(() => vi.unstubAllGlobals());

  const TOKEN = 'test-access-token';
  const ctx = {
    credentials: { '${provider}': { accessToken: async () => TOKEN } },
    signal: new AbortController().signal,
  } as unknown as ToolContext<'${provider}'>;

  it('declares ${provider}, so the server asks a person who has not connected it to connect', () => {
    expect(tool.credentials).toEqual(['${provider}']);
  });

  it('calls the API with the person\\'s token and returns none of it', async () => {
    const seen: Request[] = [];
    vi.stubGlobal('fetch', async (input: RequestInfo | URL, init?: RequestInit) => {
      seen.push(new Request(input, init));
      return Response.json({ id: 42 });
    });
    const result = await tool.handler({}, ctx);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers.get('authorization')).toBe(\`Bearer \${TOKEN}\`);
    expect(JSON.stringify(result)).not.toContain(TOKEN);
  });

  it('turns an error answer into a tool error that does not show the token', async () => {
    vi.stubGlobal('fetch', async () => new Response('no', { status: 401 }));
    const e = await Promise.resolve(tool.handler({}, ctx)).then(() => undefined, (err: unknown) => err);
    expect(e).toMatchObject({ name: 'ToolError', message: expect.stringContaining('401') });
    expect((e as Error).message).not.toContain(TOKEN);
  });
});
`,
  ];
}

/**
 * The generated test file the call and list shapes share: a harness holding the tool and a
 * caller with its scopes; `imports`, `seed` (more of beforeAll) and `body`
 * (the cases) are the shape's own.
 */
function testTemplate(parts: { imports?: string; seed?: string; body: string }): string {
  return `import { afterAll, beforeAll, describe, expect, it } from 'vitest';
${parts.imports ?? ''}import { type ToolHarness, toolHarness } from '../../src/mcp/toolHarness.js';
import tool from '../../tools/${name}.js';

describe('${name}', () => {
  let h: ToolHarness;
  const caller = { sub: 'user-1', scopes: [${scopeList}] };
  beforeAll(async () => {
    h = await toolHarness([tool]);${parts.seed ?? ''}
  });
  afterAll(() => h.close());
${parts.body}});
`;
}
