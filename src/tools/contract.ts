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

/** A stored credential for one of the person's other services (see ToolDefinition.credentials). */
export interface ToolCredential {
  /**
   * A valid access token at the provider for the person calling, refreshed
   * first when it expires soon. Never log it and never return it: it is the
   * person's key to that service. When they have not connected it, or the
   * grant was revoked, this throws and the client is asked to send them to
   * connect (the call resumes once they have).
   */
  accessToken(): Promise<string>;
}

export interface ToolContext<Credentials extends string = never> {
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
  /** The caller's connected accounts this tool declared in `credentials`, by provider name. */
  credentials: Record<Credentials, ToolCredential>;
}


/** MCP tool annotations (hints to clients, not guarantees). */
export interface ToolHints {
  readOnlyHint?: boolean;
  destructiveHint?: boolean;
  idempotentHint?: boolean;
  openWorldHint?: boolean;
}

export interface ToolDefinition<Shape extends ZodRawShape = ZodRawShape, Out extends ZodRawShape = ZodRawShape, Credentials extends string = string> {
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
  /**
   * Who may call it (default `people`): a person's token only, or also a
   * machine client's (client credentials, no person present; its data is keyed
   * by its client id as a person's is by theirs). A machine calling a
   * people-only tool is refused with HTTP 403 (src/mcp/stepUp.ts).
   */
  callers?: 'people' | 'people-and-machines';
  /**
   * Providers (names from CONNECTIONS_FILE) whose access token the handler
   * needs for the person calling, e.g. `['github']`; then
   * `ctx.credentials.github.accessToken()`. A name the catalogue lacks stops
   * the server at start-up.
   */
  credentials?: readonly Credentials[];
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
    ctx: ToolContext<Credentials>,
  ): Promise<ZodRawShape extends Out ? unknown : z.input<z.ZodObject<Out>>> | (ZodRawShape extends Out ? unknown : z.input<z.ZodObject<Out>>);
}

/** Identity function that gives a tool file full type inference. */
export function defineTool<Shape extends ZodRawShape, Out extends ZodRawShape = ZodRawShape, const Credentials extends string = never>(
  definition: ToolDefinition<Shape, Out, Credentials>,
): ToolDefinition<Shape, Out, Credentials> {
  return definition;
}

/** Throw this from a handler for an error the caller should see verbatim. */
export { ToolError } from './toolError.js';
