import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '../../../scripts/hydra.js';
import { runUserScript } from '../../support/userCli.js';

describe('npm run user (the CLI, on a SQLite file)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-user-cli-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** Run scripts/user.ts like `npm run user -- …`, stdin piped (not a terminal). */
  const user = (args: string[], stdin = '', extraEnv: Record<string, string> = {}) =>
    // cwd is the temporary directory, so no .env of the checkout is loaded.
    runUserScript(args, { cwd: dir, env: { DATABASE_PATH: join(dir, 'users.sqlite'), DATABASE_URL: undefined, ...extraEnv }, stdin });

  it('adds a user with the password from stdin and prints the sub', async () => {
    const r = await user(['add', ' Alice@Example.com '], 'correct horse\nignored second line\n');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Added user alice@example\.com \(sub [0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\)\n$/);
    const list = await user(['list']);
    expect(list.code).toBe(0);
    expect(list.out).toContain('alice@example.com\t');
    expect(list.out).toContain('1 user in the sqlite database');
  });

  it.each([
    ['a duplicate email', ['add', 'alice@example.com'], 'another password\n', /already exists/],
    ['a short password', ['add', 'bob@example.com'], 'short\n', /at least 8 characters/],
    ['an empty stdin', ['add', 'bob@example.com'], '', /no password on stdin/],
    ['an invalid email', ['add', 'not-an-email'], 'long enough\n', /not a valid email address/],
    ['an unknown user', ['remove', 'nobody@example.com'], '', /no user with email/],
  ])('refuses %s with exit code 1 and a one-line error', async (_case, args, stdin, message) => {
    const r = await user(args, stdin);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(message);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.out).toBe('');
  });

  it.each([[[]], [['frobnicate']], [['add']], [['list', 'extra']]])('prints usage and exits 2 for %j', async (args) => {
    const r = await user(args);
    expect(r.code).toBe(2);
    expect(r.err).toContain('usage: npm run user');
  });

  it('changes a password', async () => {
    expect((await user(['passwd', 'alice@example.com'], 'a new password\n')).out).toBe('Password changed for alice@example.com\n');
  });

  // The whole removal, against the real Hydra, is test/e2e/removal.test.ts.
  it('remove with Hydra unreachable: exit 1 saying to run it again; the account and its data stay until Hydra confirms', async () => {
    const closed = `http://127.0.0.1:${await freeLoopbackPort()}`;
    const r = await user(['remove', 'ALICE@example.com'], '', { HYDRA_ADMIN_URL: closed });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: removal of [0-9a-f-]{36} stopped at the hydra step \(.*unreachable.*\).*run the removal again to finish it\n$/);
    expect(r.out).toBe('');
    expect((await user(['list'])).out).toContain('alice@example.com\t');
  });
});
