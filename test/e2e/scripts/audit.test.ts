import { type CliRun, runProjectScript } from '../../support/userCli.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLine, parseAuditArgs, parseSince, UsageError } from '../../../scripts/audit.js';
import { auditStore } from '../../../src/store/auditStore.js';
import { openDatabase } from '../../../src/store/database.js';


/** Run scripts/audit.ts under tsx as `npm run audit -- …` does, from a scratch directory (no .env). */
function runAudit(args: string[], env: Record<string, string>, cwd: string): Promise<CliRun> {
  return runProjectScript('scripts/audit.ts', args, { cwd, env, isolatedEnv: true });
}

describe('npm run audit', () => {
  let dir: string;
  let env: Record<string, string>;
  const recent = (minutesAgo: number) => new Date(Date.now() - minutesAgo * 60_000).toISOString();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-audit-cli-'));
    env = { DATABASE_PATH: join(dir, 'hydra-mcp.sqlite') };
    const db = await openDatabase({ kind: 'sqlite', path: env.DATABASE_PATH! });
    await auditStore(db).insertMany([
      { id: 'a1', at: recent(5), kind: 'tool_call', sub: 'alice', clientId: 'app-1', clientName: 'Evil\u001b[31mApp', tool: 'whoami', scopes: 'openid', outcome: 'ok', durationMs: 3, transport: 'streamable-http', requestId: 'r1' },
      { id: 'a2', at: recent(4), kind: 'tool_call', sub: 'alice', clientId: 'app-2', tool: 'notes_add', outcome: 'insufficient_scope', transport: 'sse' },
      { id: 'b1', at: recent(3), kind: 'tool_call', sub: 'bob', clientId: 'app-1', tool: 'whoami', outcome: 'ok' },
      { id: 'old', at: '2020-01-01T00:00:00.000Z', kind: 'sign_in_ok', sub: 'alice', outcome: 'ok' },
    ]);
    await db.destroy();
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--sub, --client, --tool and --since select records, newest first, as JSON with --json', async () => {
    const ids = async (...args: string[]) => {
      const r = await runAudit([...args, '--json'], env, dir);
      expect(r.code).toBe(0);
      return (JSON.parse(r.out) as { id: string }[]).map((e) => e.id);
    };
    expect(await ids('--sub', 'alice')).toEqual(['a2', 'a1', 'old']);
    expect(await ids('--sub', 'alice', '--since', '24h')).toEqual(['a2', 'a1']);
    expect(await ids('--client', 'app-1')).toEqual(['b1', 'a1']);
    expect(await ids('--client', 'app-1', '--tool', 'whoami', '--limit', '1')).toEqual(['b1']);
    expect(await ids('--since', '2019-12-31')).toEqual(['b1', 'a2', 'a1', 'old']);
    expect(await ids('--sub', 'nobody')).toEqual([]);
  }, 60_000);

  it('prints one line per record; a client name cannot send control characters to the terminal', async () => {
    const r = await runAudit(['--sub', 'alice', '--tool', 'whoami'], env, dir);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('tool_call  ok  sub=alice  client=app-1');
    expect(lines[0]).toContain('tool=whoami');
    expect(lines[0]).toContain('request=r1');
    expect(r.out).not.toContain('\u001b');
  }, 30_000);

  it.each([
    ['an unknown flag', ['--user', 'alice'], /Unknown option '--user'/],
    ['a bad --since', ['--since', 'yesterday'], /--since "yesterday" is not a duration/],
    ['a --since with a unit we do not take', ['--since', '5w'], /--since "5w"/],
    ['a --since date that does not exist', ['--since', '2026-13-45'], /--since "2026-13-45"/],
    ['a negative --limit', ['--limit', '-5'], /--limit|argument/],
    ['a huge --limit', ['--limit', '100000'], /--limit must be a whole number from 1 to 1000/],
    ['a positional argument', ['alice'], /Unexpected argument 'alice'/],
    ['an empty --sub', ['--sub', ''], /--sub must be 1 to 255 characters/],
  ])('%s is a usage error: exit 2, usage on stderr, nothing printed', async (_name, args, message) => {
    const r = await runAudit(args, env, dir);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(message);
    expect(r.err).toContain('usage: npm run audit --');
  }, 30_000);

  it('parses --since as a duration back from now or an ISO-8601 time', () => {
    const now = new Date('2026-03-10T12:00:00.000Z');
    expect(parseSince('24h', now).toISOString()).toBe('2026-03-09T12:00:00.000Z');
    expect(parseSince('7d', now).toISOString()).toBe('2026-03-03T12:00:00.000Z');
    expect(parseSince('30m', now).toISOString()).toBe('2026-03-10T11:30:00.000Z');
    expect(parseSince('2026-01-31T08:00:00Z', now).toISOString()).toBe('2026-01-31T08:00:00.000Z');
    expect(() => parseSince('March 7', now)).toThrow(UsageError);
    expect(parseAuditArgs([], now)).toEqual({ filter: { limit: 100 }, json: false });
    expect(formatLine({ id: 'x', at: '2026-01-01T00:00:00.000Z', kind: 'sign_in_failed', outcome: 'refused', detail: 'unknown account' })).toBe(
      '2026-01-01T00:00:00.000Z  sign_in_failed  refused  detail="unknown account"',
    );
  });
});
