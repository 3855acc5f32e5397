import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Db } from '../store/database.js';
import { hashPassword, verifyNothing, verifyPassword } from './password.js';

export interface User {
  /** The subject (`sub`) of this user's tokens. */
  id: string;
  email: string;
  createdAt: string;
}

/** Bad input for a user operation; the message says what is wrong. */
export class UserInputError extends Error {
  override name = 'UserInputError';
}
export class DuplicateUserError extends UserInputError {
  override name = 'DuplicateUserError';
}

const Email = z.string().trim().toLowerCase().pipe(z.email({ message: 'is not a valid email address' }));
export const MIN_PASSWORD = 8;
const Password = z
  .string()
  .min(MIN_PASSWORD, { message: `must be at least ${MIN_PASSWORD} characters` })
  .max(1024, { message: 'must be at most 1024 characters' });

/** Trim and lower-case an email, or throw UserInputError. */
export function normaliseEmail(email: string): string {
  const r = Email.safeParse(email);
  if (!r.success) throw new UserInputError(`email ${JSON.stringify(email)} ${r.error.issues[0]?.message ?? 'is invalid'}`);
  return r.data;
}

/** The password rules every way of setting one follows; throws UserInputError naming the rule broken. */
export function checkPassword(password: string): string {
  const r = Password.safeParse(password);
  if (!r.success) throw new UserInputError(`password ${r.error.issues[0]?.message ?? 'is invalid'}`);
  return password;
}

export interface UserStore {
  /** Create a user with a fresh random id (the `sub`). Throws UserInputError (bad email or password) or DuplicateUserError. */
  add(email: string, password: string): Promise<User>;
  /** The user when email and password match; undefined otherwise (same time either way). */
  verify(email: string, password: string): Promise<User | undefined>;
  /** The user whose tokens carry `sub` = `id`. */
  findById(id: string): Promise<User | undefined>;
  /** The user with this email (normalised first). Throws UserInputError for a malformed email. */
  findByEmail(email: string): Promise<User | undefined>;
  /** Every user, by email. */
  list(): Promise<User[]>;
  /** Delete the user; false when there was none. Throws UserInputError for a malformed email. */
  remove(email: string): Promise<boolean>;
  /** Delete the user whose `sub` is `id`; false when there was none. Account removal (src/account/) calls it last. */
  removeById(id: string): Promise<boolean>;
  /** Replace the password; false when there is no such user. Throws UserInputError for bad input. */
  setPassword(email: string, password: string): Promise<boolean>;
  /**
   * A digest of the stored password hash; undefined when there is no such
   * user. It changes whenever the password does (every hash has a fresh
   * salt), so a session bound to it ends on a change (/account does this).
   * Not the hash: a digest of it is no help to someone guessing passwords.
   */
  passwordStamp(id: string): Promise<string | undefined>;
}

export function createUserStore(db: Db): UserStore {
  const toUser = (r: { id: string; email: string; created_at: string }): User => ({ id: r.id, email: r.email, createdAt: r.created_at });
  return {
    async add(email, password) {
      const normal = normaliseEmail(email);
      checkPassword(password);
      const exists = await db.selectFrom('users').select('id').where('email', '=', normal).executeTakeFirst();
      if (exists) throw new DuplicateUserError(`a user with email ${normal} already exists`);
      const row = { id: randomUUID(), email: normal, password_hash: await hashPassword(password), created_at: new Date().toISOString() };
      try {
        await db.insertInto('users').values(row).execute();
      } catch (e) {
        // Lost a race with another add of the same email: the unique index decides.
        if (/UNIQUE/i.test((e as Error).message)) throw new DuplicateUserError(`a user with email ${normal} already exists`);
        throw e;
      }
      return toUser(row);
    },
    async verify(email, password) {
      const parsed = Email.safeParse(email);
      const row = parsed.success ? await db.selectFrom('users').selectAll().where('email', '=', parsed.data).executeTakeFirst() : undefined;
      // Unknown (or malformed) emails cost one scrypt too, so timing does not tell which emails exist.
      if (!row) {
        await verifyNothing(password);
        return undefined;
      }
      return (await verifyPassword(password, row.password_hash)) ? toUser(row) : undefined;
    },
    async findById(id) {
      const row = await db.selectFrom('users').select(['id', 'email', 'created_at']).where('id', '=', id).executeTakeFirst();
      return row && toUser(row);
    },
    async findByEmail(email) {
      const row = await db.selectFrom('users').select(['id', 'email', 'created_at']).where('email', '=', normaliseEmail(email)).executeTakeFirst();
      return row && toUser(row);
    },
    async list() {
      return (await db.selectFrom('users').select(['id', 'email', 'created_at']).orderBy('email').execute()).map(toUser);
    },
    async remove(email) {
      const r = await db.deleteFrom('users').where('email', '=', normaliseEmail(email)).executeTakeFirst();
      return r.numDeletedRows > 0n;
    },
    async removeById(id) {
      const r = await db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
      return r.numDeletedRows > 0n;
    },
    async setPassword(email, password) {
      checkPassword(password);
      const r = await db
        .updateTable('users')
        .set({ password_hash: await hashPassword(password) })
        .where('email', '=', normaliseEmail(email))
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },
    async passwordStamp(id) {
      const row = await db.selectFrom('users').select('password_hash').where('id', '=', id).executeTakeFirst();
      return row && createHash('sha256').update(row.password_hash).digest('base64url').slice(0, 22);
    },
  };
}
