import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { REGISTRABLE_SCOPES } from '../../src/auth/scopes.js';
import { defineTool } from '../../src/tools/contract.js';
import { checkTool, checkUnique, loadTools, ToolDefinitionError } from '../../src/tools/registry.js';

const good = defineTool({ name: 'echo', description: 'Echoes', input: { text: z.string() }, scopes: [], handler: ({ text }) => text });

describe('tool registry', () => {
  it('finds every tool in tools/ without a hand-edited list', async () => {
    const tools = await loadTools(fileURLToPath(new URL('../../tools/', import.meta.url)), REGISTRABLE_SCOPES);
    expect(tools.map((t) => t.name)).toEqual(['long_task', 'notes_add', 'notes_delete', 'notes_get', 'notes_list', 'notes_stats', 'whoami']);
    expect(Object.fromEntries(tools.map((t) => [t.name, t.scopes]))).toEqual({
      long_task: [],
      notes_stats: ['notes:read'],
      notes_add: ['notes:write'],
      notes_delete: ['notes:write'],
      notes_get: ['notes:read'],
      notes_list: ['notes:read'],
      whoami: [],
    });
  });

  it.each([
    ['no default export', undefined, 'must `export default defineTool'],
    ['a bad name', { ...good, name: 'Echo Tool' }, 'must match'],
    ['no description', { ...good, description: ' ' }, 'description is required'],
    ['a non-zod input', { ...good, input: { text: 'string' } }, 'input must be a zod shape'],
    ['an unknown scope', { ...good, scopes: ['admin'] }, 'unknown scope(s) admin'],
    ['no handler', { ...good, handler: undefined }, 'handler must be a function'],
    ['a non-zod output', { ...good, output: { n: 'number' } }, 'output must be a zod shape'],
  ])('refuses a definition with %s, naming the file', (_case, candidate, message) => {
    expect(() => checkTool(candidate, 'echo.ts', REGISTRABLE_SCOPES)).toThrow(ToolDefinitionError);
    expect(() => checkTool(candidate, 'echo.ts', REGISTRABLE_SCOPES)).toThrow(`tools/echo.ts: `);
    expect(() => checkTool(candidate, 'echo.ts', REGISTRABLE_SCOPES)).toThrow(message);
  });

  it('refuses two tools with one name', () => {
    expect(() => checkUnique([good, { ...good }])).toThrow('two tools are named echo');
  });
});
