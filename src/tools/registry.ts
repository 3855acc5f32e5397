import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { ToolDefinition } from './contract.js';

/** A tool file that cannot be served; raised at start-up, never at the first call. */
export class ToolDefinitionError extends Error {
  override name = 'ToolDefinitionError';
}

const NAME = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * Load every tool in `dir` (one default export per file, made with
 * defineTool). No hand-edited list: a new file is a new tool. Files ending in
 * `.test.*` or `.d.ts` are skipped.
 */
export async function loadTools(dir: string, knownScopes: readonly string[]): Promise<ToolDefinition[]> {
  const files = (await readdir(dir))
    .filter((f) => ['.ts', '.js', '.mjs'].includes(extname(f)) && !/\.(test|spec)\.|\.d\.ts$/.test(f))
    .sort();
  const tools: ToolDefinition[] = [];
  for (const file of files) {
    const mod = (await import(pathToFileURL(join(dir, file)).href)) as { default?: unknown };
    tools.push(checkTool(mod.default, file, knownScopes));
  }
  return checkUnique(tools);
}

export function checkTool(candidate: unknown, file: string, knownScopes: readonly string[]): ToolDefinition {
  const fail = (why: string): never => {
    throw new ToolDefinitionError(`tools/${file}: ${why}`);
  };
  if (!candidate || typeof candidate !== 'object') fail('must `export default defineTool({...})`');
  const t = candidate as Partial<ToolDefinition>;
  if (typeof t.name !== 'string' || !NAME.test(t.name)) fail(`name ${JSON.stringify(t.name)} must match ${NAME}`);
  if (typeof t.description !== 'string' || !t.description.trim()) fail(`${t.name}: description is required`);
  if (!t.input || typeof t.input !== 'object' || !Object.values(t.input).every((v) => v instanceof z.ZodType)) {
    fail(`${t.name}: input must be a zod shape, e.g. { id: z.string() }`);
  }
  if (t.output !== undefined && (typeof t.output !== 'object' || !Object.values(t.output).every((v) => v instanceof z.ZodType))) {
    fail(`${t.name}: output must be a zod shape when given`);
  }
  if (!Array.isArray(t.scopes)) fail(`${t.name}: scopes must be an array ([] for any valid token)`);
  const unknown = t.scopes!.filter((s) => !knownScopes.includes(s));
  if (unknown.length) fail(`${t.name}: unknown scope(s) ${unknown.join(', ')}; known: ${knownScopes.join(', ')}`);
  if (t.onlineCheck !== undefined && typeof t.onlineCheck !== 'boolean') fail(`${t.name}: onlineCheck must be true or false`);
  if (t.callers !== undefined && t.callers !== 'people' && t.callers !== 'people-and-machines') {
    fail(`${t.name}: callers must be 'people' (the default) or 'people-and-machines', not ${JSON.stringify(t.callers)}`);
  }
  if (t.credentials !== undefined) {
    const c = t.credentials as unknown;
    if (!Array.isArray(c) || c.some((p) => typeof p !== 'string' || !/^[a-z][a-z0-9_-]{0,31}$/.test(p)) || new Set(c).size !== c.length) {
      fail(`${t.name}: credentials must be a list of distinct provider names from CONNECTIONS_FILE (e.g. ['github']), not ${JSON.stringify(c)}`);
    }
  }
  if (typeof t.handler !== 'function') fail(`${t.name}: handler must be a function`);
  return t as ToolDefinition;
}

export function checkUnique(tools: ToolDefinition[]): ToolDefinition[] {
  const seen = new Set<string>();
  for (const t of tools) {
    if (seen.has(t.name)) throw new ToolDefinitionError(`two tools are named ${t.name}`);
    seen.add(t.name);
  }
  return tools;
}
