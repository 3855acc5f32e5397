import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REGISTRABLE_SCOPES } from '../../src/auth/scopes.js';
import { scopedStoreFor } from '../../src/store/scopedStore.js';
import { checkTool } from '../../src/tools/registry.js';
import { type ToolHarness, toolHarness } from '../../src/tools/testing.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

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
  });
  afterAll(() => rmSync(tree, { recursive: true, force: true }));

  const newTool = (...args: string[]) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(process.execPath, [join(ROOT, 'node_modules/tsx/dist/cli.mjs'), join(tree, 'scripts/new-tool.ts'), ...args], { cwd: tree }, (e, out, err) =>
        resolve({ code: e ? Number(e.code ?? 1) : 0, out, err }),
      );
    });
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

  it.each([
    ['an unknown option', ['some_tool', '--lsit'], 2, 'unknown option(s) --lsit'],
    ['a tool that already exists', ['bookmarks_list', '--list'], 1, 'tools/bookmarks_list.ts already exists'],
  ])('refuses %s and writes nothing', async (_case, args, code, message) => {
    const r = await newTool(...args);
    expect(r.code).toBe(code);
    expect(r.err).toContain(message);
    expect(existsSync(join(tree, 'tools/some_tool.ts'))).toBe(false);
  });
});
