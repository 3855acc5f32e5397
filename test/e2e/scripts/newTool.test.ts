import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stripVTControlCharacters } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGISTRABLE_SCOPES } from '../../../src/auth/scopes.js';
import { scopedStoreFor } from '../../../src/store/scopedStore.js';
import { checkTool } from '../../../src/tools/registry.js';
import { type ToolHarness, toolHarness } from '../../../src/mcp/toolHarness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * `npm run new-tool` writes into the tree it lives in, so each run here uses
 * a copy of the script in a scratch tree whose src/ and node_modules/ are
 * links to the real ones: the scaffold is loaded and called exactly as a new
 * tool would be, without touching tools/.
 */
describe('npm run new-tool (scaffold)', () => {
  let tree: string;
  beforeAll(() => {
    tree = mkdtempSync(join(tmpdir(), 'hydra-mcp-new-tool-'));
    for (const dir of ['scripts', 'tools', 'test/tools']) mkdirSync(join(tree, dir), { recursive: true });
    symlinkSync(join(ROOT, 'src'), join(tree, 'src'));
    symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
    copyFileSync(join(ROOT, 'scripts/new-tool.ts'), join(tree, 'scripts/new-tool.ts'));
    // ES modules, as in the project (tsc reads this to type-check the generated files).
    writeFileSync(join(tree, 'package.json'), JSON.stringify({ type: 'module' }));
  });
  afterAll(() => rmSync(tree, { recursive: true, force: true }));

  /** Run a Node script from the project's node_modules in the scratch tree. */
  const node = (script: string, ...args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, [join(ROOT, 'node_modules', script), ...args], { cwd: tree }, (e, out, err) =>
        resolve({ code: e ? Number(e.code ?? 1) : 0, out, err }),
      );
    });
  const newTool = (...args: string[]) => node('tsx/dist/cli.mjs', join(tree, 'scripts/new-tool.ts'), ...args);
  /** tsc --noEmit over `files` with the project's compiler options (strict, NodeNext…). */
  const typecheck = (files: string[]) => {
    const { compilerOptions } = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: Record<string, unknown> };
    // rootDir and outDir are about emitting; src/ is reached through a link, outside this tree.
    const { rootDir: _rootDir, outDir: _outDir, ...options } = compilerOptions;
    writeFileSync(join(tree, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...options, noEmit: true }, files }));
    return node('typescript/bin/tsc', '-p', join(tree, 'tsconfig.json'));
  };
  const load = async (name: string) => {
    const mod = (await import(pathToFileURL(join(tree, 'tools', `${name}.ts`)).href)) as { default: unknown };
    return checkTool(mod.default, `${name}.ts`, REGISTRABLE_SCOPES);
  };

  describe('--list: a list-shaped tool with signed cursors', () => {
    let h: ToolHarness;
    beforeAll(async () => {
      const r = await newTool('bookmarks_list', 'notes:read', '--list');
      expect(r, r.err).toMatchObject({ code: 0 });
      expect(existsSync(join(tree, 'test/tools/bookmarks_list.test.ts'))).toBe(true);
      h = await toolHarness([await load('bookmarks_list')]);
      const mine = scopedStoreFor(h.db, 'ann').records('bookmarks_list');
      for (const key of ['k1', 'k2', 'k3', 'k4', 'k5']) await mine.put(key, key);
    });
    afterAll(() => h?.close());

    const caller = (sub: string) => ({ sub, scopes: ['notes:read'] });

    it('pages through the caller’s records with cursors, and only theirs', async () => {
      const keys: string[][] = [];
      let cursor: string | undefined;
      do {
        const r = await h.call('bookmarks_list', { limit: 2, ...(cursor ? { cursor } : {}) }, caller('ann'));
        expect(r.isError, r.text).toBeFalsy();
        const page = JSON.parse(r.text) as { items: { key: string }[]; nextCursor?: string };
        keys.push(page.items.map((i) => i.key));
        cursor = page.nextCursor;
      } while (cursor && keys.length < 10);
      expect(keys).toEqual([['k1', 'k2'], ['k3', 'k4'], ['k5']]);
      expect(JSON.parse((await h.call('bookmarks_list', {}, caller('ben'))).text)).toEqual({ items: [] });
    });

    it('refuses another person’s cursor and a page size over the maximum', async () => {
      const { nextCursor } = JSON.parse((await h.call('bookmarks_list', { limit: 1 }, caller('ann'))).text) as { nextCursor: string };
      const foreign = await h.call('bookmarks_list', { cursor: nextCursor }, caller('ben'));
      expect(foreign).toMatchObject({ isError: true, text: expect.stringMatching(/^invalid_cursor: the cursor was not issued to this user for bookmarks_list/) });
      const tooMany = await h.call('bookmarks_list', { limit: 101 }, caller('ann'));
      expect(tooMany.isError).toBe(true);
      expect(tooMany.text).toContain('limit');
    });
  });

  it('without --list, writes the one-call template (still loads and answers)', async () => {
    expect((await newTool('echo_count')).code).toBe(0);
    const h = await toolHarness([await load('echo_count')]);
    try {
      expect(JSON.parse((await h.call('echo_count', { text: 'hi' }, { sub: 'cy' })).text)).toMatchObject({ text: 'hi', calls: 1 });
    } finally {
      await h.close();
    }
  });

  describe('--credential PROVIDER: a tool that calls the person’s connected account', () => {
    // A plain name (property access) and one with "-" (bracket access).
    const made = [
      { tool: 'gh_profile', provider: 'github', scopes: [] as string[], access: 'ctx.credentials.github.accessToken()' },
      { tool: 'acme_me', provider: 'acme-corp', scopes: ['notes:read'], access: "ctx.credentials['acme-corp'].accessToken()" },
    ];
    beforeAll(async () => {
      for (const m of made) {
        const r = await newTool(m.tool, ...m.scopes, '--credential', m.provider);
        expect(r, r.err).toMatchObject({ code: 0 });
        expect(r.out).toContain(`provider "${m.provider}" in CONNECTIONS_FILE`);
      }
    });
    const files = made.flatMap((m) => [`tools/${m.tool}.ts`, `test/tools/${m.tool}.test.ts`]);

    it('the generated tools and their tests type-check with the project’s compiler options', async () => {
      const r = await typecheck(files);
      expect(r.code, r.out + r.err).toBe(0);
    });

    it.each(made)('the registry accepts $tool: it declares [$provider] and reads the token as $access', async (m) => {
      const tool = await load(m.tool);
      expect(tool).toMatchObject({ name: m.tool, credentials: [m.provider], scopes: m.scopes });
      const source = readFileSync(join(tree, `tools/${m.tool}.ts`), 'utf8');
      expect(source).toContain(`const token = await ${m.access};`);
      expect(source).toMatch(/fetch\(API_URL, \{\s+headers: \{ authorization: `Bearer \$\{token\}`/);
      // What a tool author must know: the token stays secret, a missing connection is not theirs to handle.
      expect(source).toMatch(/never log it, never return it/);
      expect(source).toMatch(/Not connected yet.*Handled for you.*the client is asked to send the person to connect/s);
      expect(source).toMatch(/^\/\/ TODO: the .* API endpoint this tool calls/m);
    });

    it('the generated tests pass: the token goes out as a bearer and never comes back', async () => {
      const r = await node('vitest/vitest.mjs', 'run', '--root', tree, ...made.map((m) => `test/tools/${m.tool}.test.ts`));
      expect(r.code, r.out + r.err).toBe(0);
      expect(stripVTControlCharacters(r.out)).toMatch(/Tests\s+6 passed \(6\)/);
    });
  });

  it.each<[string, string[], number, string]>([
    ['an unknown option', ['some_tool', '--lsit'], 2, 'unknown option(s) --lsit'],
    ['a tool that already exists', ['bookmarks_list', '--list'], 1, 'tools/bookmarks_list.ts already exists'],
    ['--credential without a provider', ['some_tool', '--credential'], 2, '--credential needs a provider name from CONNECTIONS_FILE'],
    ['--list with --credential', ['some_tool', '--list', '--credential', 'github'], 2, 'choose one of --list and --credential'],
    ...['GitHub', '1password', 'git.hub', 'a'.repeat(33), "x'y", ''].map(
      (p): [string, string[], number, string] => [`the provider name ${JSON.stringify(p)}`, ['some_tool', `--credential=${p}`], 1, `provider name ${JSON.stringify(p)} must be 1 to 32 lower case letters, digits, "_" or "-", starting with a letter`],
    ),
  ])('refuses %s and writes nothing', async (_case, args, code, message) => {
    const r = await newTool(...args);
    expect(r.code).toBe(code);
    expect(r.err).toContain(message);
    expect(existsSync(join(tree, 'tools/some_tool.ts'))).toBe(false);
  });
});
