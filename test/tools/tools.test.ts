import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { REGISTRABLE_SCOPES } from '../../src/auth/scopes.js';
import { defineTool } from '../../src/tools/contract.js';
import { loadTools } from '../../src/tools/registry.js';
import { type ToolHarness, toolHarness } from '../../src/mcp/toolHarness.js';

const boom = defineTool({
  name: 'boom',
  description: 'Fails with an internal error',
  input: {},
  scopes: [],
  handler: () => {
    throw new Error('connect ECONNREFUSED 10.0.0.5:5432 password=hunter2');
  },
});

describe('tools through a real McpServer (in-memory transport, SQLite in memory)', () => {
  let h: ToolHarness;
  const alice = { sub: 'alice', scopes: ['notes:read', 'notes:write'] };

  beforeAll(async () => {
    const tools = await loadTools(fileURLToPath(new URL('../../tools/', import.meta.url)), REGISTRABLE_SCOPES);
    h = await toolHarness([...tools, boom]);
  });
  afterAll(() => h.close());

  it('names the failing field when input does not match the schema', async () => {
    const r = await h.call('notes_add', { title: '', body: 42 }, alice);
    expect(r.isError).toBe(true);
    expect(r.text).toContain('Input validation error');
    expect(r.text).toContain('title');
    expect(r.text).toContain('body');
  });

  it('turns an unexpected handler error into a safe message (no internals, no secrets)', async () => {
    const r = await h.call('boom', {}, alice);
    expect(r.isError).toBe(true);
    expect(r.text).toBe('boom failed; the error was logged');
    expect(r.text).not.toContain('hunter2');
  });

  it('refuses a call without the required scope, naming every scope the tool needs', async () => {
    const r = await h.call('notes_add', { title: 't', body: 'b' }, { sub: 'alice', scopes: ['notes:read'] });
    expect(r).toMatchObject({ isError: true });
    expect(r.text).toBe('insufficient_scope: notes_add needs scope notes:write; the token is missing notes:write');
  });

  it('returns typed structuredContent from a tool with an output schema', async () => {
    await h.call('notes_add', { title: 'first', body: '' }, alice);
    const r = await h.call('notes_stats', {}, alice);
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ count: 1, newest: { title: 'first' } });
    expect(JSON.parse(r.text)).toEqual(r.structuredContent);
  });

  it('reports progress for a long task', async () => {
    const seen: number[] = [];
    const r = await h.call('long_task', { seconds: 2 }, alice, { onprogress: (p) => seen.push(p.progress) });
    expect(JSON.parse(r.text)).toEqual({ completed: 2 });
    expect(seen).toEqual([1, 2]);
  });

  it('stops a long task when the client cancels', async () => {
    const ac = new AbortController();
    const call = h.call('long_task', { seconds: 30 }, { sub: 'bob' }, { signal: ac.signal, onprogress: () => ac.abort('enough') });
    await expect(call).rejects.toThrow();
    // Give the server a moment to see notifications/cancelled and record it.
    const runs = () => h.db.selectFrom('records').select('value').where('sub', '=', 'bob').executeTakeFirst();
    await expect.poll(async () => JSON.parse((await runs())?.value ?? '{}').status, { timeout: 5000 }).toBe('cancelled');
    expect(JSON.parse((await runs())!.value)).toEqual({ status: 'cancelled', completed: 1, of: 30 });
  });
});

describe('defineTool output typing', () => {
  it('keeps the output shape on the definition', () => {
    const t = defineTool({ name: 'x', description: 'x', input: {}, output: { n: z.number() }, scopes: [], handler: () => ({ n: 1 }) });
    expect(Object.keys(t.output!)).toEqual(['n']);
  });
});
