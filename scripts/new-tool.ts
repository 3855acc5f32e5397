/**
 * `npm run new-tool -- <name> [scope ...] [--list]`: write tools/<name>.ts and
 * test/tools/<name>.test.ts from a template, ready to edit and run. `--list`
 * makes a list-shaped tool: pages of the caller's records with signed cursors.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SUPPORTED_SCOPES } from '../src/auth/scopes.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const NAME = /^[a-z][a-z0-9_]{0,63}$/;

function fail(message: string, code = 1): never {
  console.error(`error: ${message}`);
  process.exit(code);
}

const args = process.argv.slice(2);
const flags = args.filter((a) => a.startsWith('--'));
const badFlags = flags.filter((f) => f !== '--list');
if (badFlags.length) fail(`unknown option(s) ${badFlags.join(', ')}; the only option is --list (a list-shaped tool with cursors)`, 2);
const listShaped = flags.includes('--list');
const [name, ...scopes] = args.filter((a) => !a.startsWith('--'));
if (!name) fail('usage: npm run new-tool -- <name> [scope ...] [--list]   e.g. npm run new-tool -- notes_count notes:read', 2);
if (!NAME.test(name)) fail(`tool name "${name}" must be lower case letters, digits and underscores, starting with a letter`);
const unknown = scopes.filter((s) => !SUPPORTED_SCOPES.includes(s));
if (unknown.length) fail(`unknown scope(s) ${unknown.join(', ')}; known: ${SUPPORTED_SCOPES.join(', ')} (add new ones to src/auth/scopes.ts)`);

const toolPath = `tools/${name}.ts`;
const testPath = `test/tools/${name}.test.ts`;
for (const p of [toolPath, testPath]) if (existsSync(ROOT + p)) fail(`${p} already exists`);

const title = name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
const scopeList = scopes.map((s) => `'${s}'`).join(', ');

const [toolSource, testSource] = listShaped ? listTemplates() : callTemplates();
writeFileSync(ROOT + toolPath, toolSource);
writeFileSync(ROOT + testPath, testSource);

console.log(`Created ${toolPath} and ${testPath}.
Next: edit the description, input and handler; run  npx vitest run ${testPath}
then restart npm start: the tool is found automatically and listed to clients.`);

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
 * The generated test file both shapes share: a harness holding the tool and a
 * caller with its scopes; `imports`, `seed` (more of beforeAll) and `body`
 * (the cases) are the shape's own.
 */
function testTemplate(parts: { imports?: string; seed?: string; body: string }): string {
  return `import { afterAll, beforeAll, describe, expect, it } from 'vitest';
${parts.imports ?? ''}import { type ToolHarness, toolHarness } from '../../src/tools/testing.js';
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
