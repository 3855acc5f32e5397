/**
 * The tool contract: everything a file in tools/ may import. A tool never
 * sees Express, transports, Hydra or the database driver; it gets validated
 * input and a context holding the caller and that caller's own data.
 */
import type { ZodRawShape, z } from 'zod';
import type { Principal } from '../auth/principal.js';
import type { Logger } from '../log/logger.js';
import type { ScopedStore } from '../store/scopedStore.js';
import type { PageCursors } from './cursor.js';

export type { Principal } from '../auth/principal.js';
export type { Logger } from '../log/logger.js';
export type { Note } from '../store/notesStore.js';
export type { ScopedStore } from '../store/scopedStore.js';
// Pagination for list-shaped tools: keyset positions in opaque, signed cursors.
export { type CursorPosition, InvalidCursorError, type PageCursors, pageInput } from './cursor.js';

export interface ToolContext {
  /** The verified caller: `sub`, client id, scopes, token expiry. */
  principal: Principal;
  /** Storage already scoped to `principal.sub`. */
  store: ScopedStore;
  /**
   * Seal and open page cursors, bound to this caller and this tool: a cursor
   * from another person or tool, or an altered one, is refused (see pageInput).
   */
  cursors: PageCursors;
  log: Logger;
  /** Aborted when the client cancels the call or the session ends. */
  signal: AbortSignal;
  /** Report progress to clients that asked for it (no-op otherwise). */
  progress(progress: number, total?: number, message?: string): Promise<void>;
}

/** MCP tool annotations (hints to clients, not guarantees). */
export interface ToolHints {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

export interface ToolDefinition<Shape extends ZodRawShape = ZodRawShape, Out extends ZodRawShape = ZodRawShape> {
  /** Unique name clients call: lower case, digits and underscores. */
  name: string;
  title?: string;
  /** What the tool does, written for the model that decides to call it. */
  description: string;
  /** zod shape of the arguments; the SDK validates before the handler runs. */
  input: Shape;
  /**
   * Optional zod shape of the result. With it, clients get typed
   * `structuredContent` (MCP 2025-06-18) and the SDK checks the handler's value.
   */
  output?: Out;
  /** Scopes the token must carry; [] means any valid token. */
  scopes: readonly string[];
  annotations?: ToolHints;
  /**
   * Ask the authorization server on every call whether the token is still
   * active (no cache, also for JWTs), for sensitive or destructive tools.
   */
  onlineCheck?: boolean;
  /**
   * Does the work. Returns any JSON value (sent as JSON text), or, with
   * `output`, an object of that shape (also sent as structuredContent).
   */
  handler(
    input: z.infer<z.ZodObject<Shape>>,
    ctx: ToolContext,
  ): Promise<ZodRawShape extends Out ? unknown : z.input<z.ZodObject<Out>>> | (ZodRawShape extends Out ? unknown : z.input<z.ZodObject<Out>>);
}

/** Identity function that gives a tool file full type inference. */
export function defineTool<Shape extends ZodRawShape, Out extends ZodRawShape = ZodRawShape>(
  definition: ToolDefinition<Shape, Out>,
): ToolDefinition<Shape, Out> {
  return definition;
}

/** Throw this from a handler for an error the caller should see verbatim. */
export { ToolError } from './toolError.js';
