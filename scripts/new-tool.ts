/**
 * `npm run new-tool -- <name> [scope ...]`: write tools/<name>.ts and
 * test/tools/<name>.test.ts from a template, ready to edit and run.
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

const [name, ...scopes] = process.argv.slice(2);
if (!name) fail('usage: npm run new-tool -- <name> [scope ...]   e.g. npm run new-tool -- notes_count notes:read', 2);
if (!NAME.test(name)) fail(`tool name "${name}" must be lower case letters, digits and underscores, starting with a letter`);
const unknown = scopes.filter((s) => !SUPPORTED_SCOPES.includes(s));
if (unknown.length) fail(`unknown scope(s) ${unknown.join(', ')}; known: ${SUPPORTED_SCOPES.join(', ')} (add new ones to src/auth/scopes.ts)`);

const toolPath = `tools/${name}.ts`;
const testPath = `test/tools/${name}.test.ts`;
for (const p of [toolPath, testPath]) if (existsSync(ROOT + p)) fail(`${p} already exists`);

const title = name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
const scopeList = scopes.map((s) => `'${s}'`).join(', ');

writeFileSync(
  ROOT + toolPath,
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
);

writeFileSync(
  ROOT + testPath,
  `import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ToolHarness, toolHarness } from '../../src/tools/testing.js';
import tool from '../../tools/${name}.js';

describe('${name}', () => {
  let h: ToolHarness;
  const caller = { sub: 'user-1', scopes: [${scopeList}] };
  beforeAll(async () => {
    h = await toolHarness([tool]);
  });
  afterAll(() => h.close());

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
});
`,
);

console.log(`Created ${toolPath} and ${testPath}.
Next: edit the description, input and handler; run  npx vitest run ${testPath}
then restart npm start: the tool is found automatically and listed to clients.`);
