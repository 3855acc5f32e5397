import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init, parse } from 'es-module-lexer';
import { describe, expect, it } from 'vitest';

/**
 * The rooms of src/ (one job per top-level folder) depend on each other one
 * way only: no two folders import each other through any path. Imports are
 * read with es-module-lexer (type-only imports count: they tie the folders
 * together as much as values do); `src/main.ts` is the root, above every room.
 */

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** The top-level folder of src/ a file lives in ("main" for files directly in src/). */
const roomOf = (file: string) => {
  const parts = relative(SRC, file).split('/');
  return parts.length === 1 ? 'main' : parts[0]!;
};

/** Folder → folder → the file-level imports that make the edge (for the failure message). */
async function folderGraph(): Promise<Map<string, Map<string, string[]>>> {
  await init;
  const graph = new Map<string, Map<string, string[]>>();
  for (const file of await sources(SRC)) {
    const [imports] = parse(await readFile(file, 'utf8'), file);
    for (const { n: spec } of imports) {
      if (!spec?.startsWith('.')) continue;
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
      const [from, to] = [roomOf(file), roomOf(target)];
      if (from === to) continue;
      if (!graph.has(from)) graph.set(from, new Map());
      const edges = graph.get(from)!;
      edges.set(to, [...(edges.get(to) ?? []), `${relative(SRC, file)} → ${relative(SRC, target)}`]);
    }
  }
  return graph;
}

/** Every cycle of folders (each as the path that closes it), found by depth-first search from each folder. */
function folderCycles(graph: Map<string, Map<string, string[]>>): string[][] {
  const cycles = new Map<string, string[]>();
  const visit = (start: string, at: string, path: string[]) => {
    for (const next of graph.get(at)?.keys() ?? []) {
      if (next === start) {
        // One entry per cycle, whichever folder it was found from.
        const key = [...path].sort().join(',');
        if (!cycles.has(key)) cycles.set(key, [...path, start]);
      } else if (!path.includes(next)) visit(start, next, [...path, next]);
    }
  };
  for (const room of graph.keys()) visit(room, room, [room]);
  return [...cycles.values()];
}

describe('the rooms of src/', () => {
  it('no two top-level folders of src/ import each other, through any path', async () => {
    const graph = await folderGraph();
    const described = folderCycles(graph).map((cycle) =>
      cycle
        .slice(1)
        .map((to, i) => `${cycle[i]} → ${to} (${graph.get(cycle[i]!)!.get(to)![0]})`)
        .join('\n   '),
    );
    expect(described, `folder cycles:\n${described.join('\n')}`).toEqual([]);
  });

  it('the import rules of DESIGN.md: store and tools know no room of HTTP, MCP, Hydra or the pages', async () => {
    const graph = await folderGraph();
    const forbidden: Record<string, string[]> = {
      store: ['app', 'auth', 'mcp', 'hydra', 'kratos', 'signin', 'account', 'web', 'connections', 'audit', 'limits', 'tools'],
      tools: ['app', 'mcp', 'hydra', 'kratos', 'signin', 'account', 'web', 'connections', 'audit'],
      auth: ['tools', 'signin', 'account', 'web', 'mcp', 'store'],
      mcp: ['signin', 'account', 'web'],
      signin: ['mcp'],
      lib: [...graph.keys()].filter((r) => r !== 'lib'),
    };
    const broken = Object.entries(forbidden).flatMap(([from, tos]) =>
      tos.flatMap((to) => (graph.get(from)?.get(to) ?? []).map((edge) => `${from} must not import ${to}: ${edge}`)),
    );
    expect(broken).toEqual([]);
  });
});
