/**
 * Page cursors for list-shaped tools. A cursor carries a keyset position (the
 * sort key of the last row a page returned, never an offset), so the next page
 * is one indexed range read however deep the list goes.
 *
 * To the client a cursor is opaque (MCP 2025-06-18, "Pagination": clients
 * MUST treat cursors as opaque tokens). To us it is tamper-evident: an
 * HMAC-SHA256 tag over the position, the tool's name and the caller's `sub`,
 * so a cursor that was altered, cut short, or issued to another person or for
 * another tool is refused before any row is read.
 *
 * Format, for the record (clients must not rely on it):
 *   c1.<base64url(JSON position)>.<base64url(HMAC-SHA256(key, JSON ["hydra-mcp/cursor","c1",tool,sub,payload]))>
 * The tool and `sub` are in the MAC input, not in the cursor: nothing about the
 * caller is written into a string the client holds.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ToolError } from './toolError.js';

const VERSION = 'c1';
/** Longest cursor accepted; positions are a few short fields. */
export const MAX_CURSOR_LENGTH = 512;
/** Largest page a list tool may declare: one page is one bounded read. */
export const MAX_PAGE_LIMIT = 1000;
const TAG_BYTES = 32;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** RFC 5869 §3.2: `info` binds the derived key to one purpose. */
const HKDF_INFO = 'hydra-mcp tool page cursors v1';

/** A keyset position: a flat JSON object, e.g. `{ createdAt, id }` of the last row. */
export type CursorPosition = { [field: string]: string | number | boolean | null };

/** Why a cursor was refused (for tests and logs; the caller sees the message). */
export type InvalidCursorReason = 'malformed' | 'not_issued_here' | 'unfit';

/** A cursor the tool cannot use: a ToolError, so the caller sees a message naming the cursor and no rows. */
export class InvalidCursorError extends ToolError {
  override name = 'InvalidCursorError';
  constructor(
    readonly reason: InvalidCursorReason,
    tool: string,
  ) {
    const why = {
      malformed: 'is malformed or truncated',
      not_issued_here: `was not issued to this user for ${tool}, or was altered`,
      unfit: `does not fit ${tool}'s list`,
    }[reason];
    super(`invalid_cursor: the cursor ${why}; call ${tool} without a cursor to start from the first page`);
  }
}

/**
 * What a tool gets as `ctx.cursors`: already bound to the caller's `sub` and
 * the tool's name. The key stays behind it.
 */
export interface PageCursors {
  /** An opaque cursor for `position` (usually the last row of this page). */
  seal(position: CursorPosition): string;
  /**
   * The position inside a cursor this tool issued to this caller, checked
   * against `schema`; throws InvalidCursorError otherwise. Undefined in,
   * undefined out (the first page).
   */
  open<T>(cursor: string, schema: z.ZodType<T>): T;
  open<T>(cursor: string | undefined, schema: z.ZodType<T>): T | undefined;
}

/**
 * The server's cursor key. Built once in the composition root; tools only
 * ever receive the PageCursors it makes.
 */
export class CursorKey {
  readonly #key: Buffer;

  private constructor(key: Buffer) {
    this.#key = key;
  }

  /**
   * Derive the key from the server secret with HKDF-SHA256 (RFC 5869), so it
   * differs from every other key made from that secret (cookies, CSRF) and
   * every replica sharing the secret accepts the others' cursors.
   */
  static fromSecret(secret: string): CursorKey {
    if (typeof secret !== 'string' || secret.length < 32) throw new TypeError('CursorKey.fromSecret: the secret must be at least 32 characters');
    return new CursorKey(Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), HKDF_INFO, 32)));
  }

  /** A random key: cursors live as long as this object (tests, the tool harness). */
  static random(): CursorKey {
    return new CursorKey(randomBytes(32));
  }

  /** The cursors of one caller in one tool. */
  cursorsFor(sub: string, tool: string): PageCursors {
    if (!sub || !tool) throw new TypeError('CursorKey.cursorsFor: sub and tool must be non-empty');
    const tag = (payload: string) =>
      createHmac('sha256', this.#key).update(JSON.stringify(['hydra-mcp/cursor', VERSION, tool, sub, payload])).digest();
    function open<T>(cursor: string | undefined, schema: z.ZodType<T>): T | undefined {
      if (cursor === undefined) return undefined;
      const fail = (reason: InvalidCursorReason): never => {
        throw new InvalidCursorError(reason, tool);
      };
      if (typeof cursor !== 'string' || cursor.length > MAX_CURSOR_LENGTH) fail('malformed');
      const parts = cursor.split('.');
      if (parts.length !== 3 || parts[0] !== VERSION) fail('malformed');
      const [, payload, givenTag] = parts as [string, string, string];
      const given = decodeBase64url(givenTag);
      if (!decodeBase64url(payload) || !given || given.length !== TAG_BYTES) fail('malformed');
      // Constant-time: the tag must not be guessable byte by byte.
      if (!timingSafeEqual(given!, tag(payload))) fail('not_issued_here');
      let position: unknown;
      try {
        position = JSON.parse(decodeBase64url(payload)!.toString('utf8'));
      } catch {
        return fail('malformed');
      }
      const parsed = schema.safeParse(position);
      // Ours and intact, yet not this list's shape: the tool changed since it was issued.
      if (!parsed.success) fail('unfit');
      return parsed.data;
    }
    return {
      seal(position) {
        const payload = Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');
        const cursor = `${VERSION}.${payload}.${tag(payload).toString('base64url')}`;
        if (cursor.length > MAX_CURSOR_LENGTH) throw new RangeError(`a cursor position must encode to at most ${MAX_CURSOR_LENGTH} characters`);
        return cursor;
      },
      open: open as PageCursors['open'],
    };
  }
}

/** Strict base64url (canonical, unpadded), or undefined. */
function decodeBase64url(text: string): Buffer | undefined {
  if (!BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}

/**
 * The input fields of a list-shaped tool: `limit` (1 to `maxLimit`, default
 * `defaultLimit`; 0, negative or larger is the schema's input error) and an
 * optional `cursor` (the previous page's `nextCursor`). Spread it into `input`.
 */
export function pageInput(opts: { defaultLimit: number; maxLimit: number }) {
  const { defaultLimit, maxLimit } = opts;
  if (!Number.isInteger(maxLimit) || maxLimit < 1 || maxLimit > MAX_PAGE_LIMIT) {
    throw new TypeError(`pageInput: maxLimit must be an integer from 1 to ${MAX_PAGE_LIMIT}`);
  }
  if (!Number.isInteger(defaultLimit) || defaultLimit < 1 || defaultLimit > maxLimit) {
    throw new TypeError(`pageInput: defaultLimit must be an integer from 1 to maxLimit (${maxLimit})`);
  }
  return {
    limit: z.number().int().min(1).max(maxLimit).default(defaultLimit).describe(`Most items on this page (1 to ${maxLimit}, default ${defaultLimit})`),
    cursor: z
      .string()
      .min(1)
      .max(MAX_CURSOR_LENGTH)
      .optional()
      .describe('nextCursor from the previous page, unchanged; omit for the first page'),
  };
}
