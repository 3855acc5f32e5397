import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createUserStore, DuplicateUserError, type UserStore, UserInputError } from '../../src/account/userStore.js';
import { type Db, openDatabase } from '../../src/store/database.js';

// Sign-in and account pages, not the key derivation's cost: scrypt at a test cost (test/support/cheapScrypt.ts).
vi.mock('node:crypto', async (real) => (await import('../support/cheapScrypt.js')).withCheapScrypt(await real()));

describe('user store (SQLite in memory)', () => {
  let db: Db;
  let users: UserStore;
  beforeEach(async () => {
    db = await openDatabase({ kind: 'sqlite', path: ':memory:' });
    users = createUserStore(db);
  });
  afterEach(() => db.destroy());

  it('normalises email and verifies the password', async () => {
    const u = await users.add('  Alice@Example.COM ', 'long enough');
    expect(u.email).toBe('alice@example.com');
    expect(u.id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await users.verify('ALICE@example.com', 'long enough'))?.id).toBe(u.id);
    expect(await users.verify('alice@example.com', 'wrong password')).toBeUndefined();
    expect(await users.verify('nobody@example.com', 'long enough')).toBeUndefined();
    expect(await users.verify('not an email', 'long enough')).toBeUndefined();
  });

  it('finds users by id (the token sub) and lists them by email', async () => {
    const b = await users.add('bob@example.com', 'long enough');
    const a = await users.add('alice@example.com', 'long enough');
    expect(await users.findById(b.id)).toEqual(b);
    expect(await users.findById('00000000-0000-0000-0000-000000000000')).toBeUndefined();
    expect((await users.list()).map((u) => u.email)).toEqual([a.email, b.email]);
  });

  it('never stores the password itself', async () => {
    await users.add('bob@example.com', 'plain-text-secret');
    const row = await db.selectFrom('users').selectAll().executeTakeFirstOrThrow();
    expect(row.password_hash).not.toContain('plain-text-secret');
  });

  it('refuses a duplicate email, whatever its case', async () => {
    await users.add('carol@example.com', 'long enough');
    await expect(users.add('CAROL@example.com', 'other password')).rejects.toBeInstanceOf(DuplicateUserError);
    expect(await users.list()).toHaveLength(1);
  });

  it.each([
    ['an invalid email', 'not-an-email', 'long enough', 'is not a valid email address'],
    ['a short password', 'dave@example.com', 'short', 'at least 8 characters'],
  ])('refuses %s and stores nothing', async (_case, email, password, message) => {
    await expect(users.add(email, password)).rejects.toThrow(UserInputError);
    await expect(users.add(email, password)).rejects.toThrow(message);
    expect(await users.list()).toEqual([]);
  });

  it('removes and re-passwords users', async () => {
    await users.add('erin@example.com', 'first password');
    expect(await users.setPassword('erin@example.com', 'second password')).toBe(true);
    expect(await users.verify('erin@example.com', 'first password')).toBeUndefined();
    expect(await users.verify('erin@example.com', 'second password')).toBeDefined();
    expect(await users.remove('ERIN@example.com')).toBe(true);
    expect(await users.remove('erin@example.com')).toBe(false);
    expect(await users.verify('erin@example.com', 'second password')).toBeUndefined();
    expect(await users.setPassword('erin@example.com', 'third password')).toBe(false);
    await expect(users.setPassword('frank@example.com', 'short')).rejects.toThrow('at least 8 characters');
  });
});
