import type { AuthInfo } from '../auth/types.js';

/** Which transport (and protocol era) a call came over. */
export type CallTransport = 'streamable-http' | 'streamable-http-2026' | 'sse';

/**
 * What the HTTP layer knows of a request that carries tool calls, for the
 * tool layer (the audit record's request id, transport and duration).
 */
export interface CallContext {
  requestId?: string;
  transport: CallTransport;
  /** performance.now() when the request reached the call guard. */
  startedAt: number;
  /** Calls the tool layer has begun, by tool name: the SDK ran them past its input check. */
  begun: Map<string, number>;
}

// Carried on a per-request copy of the request's AuthInfo, which the SDK
// hands to the tool unchanged: an AsyncLocalStorage did the same at the price
// of a hook on every promise in the process (2 % of a call's CPU in profiles).
const CONTEXT = Symbol('hydra-mcp call context');
type WithContext = AuthInfo & { [CONTEXT]?: CallContext };

/** A copy of `auth` carrying `context` (a verifier may hand several requests one AuthInfo: it is never changed). */
export function withCallContext(auth: AuthInfo, context: CallContext): AuthInfo {
  // Spread first, symbol after: a spread of plain fields takes V8's fast clone path, one with a symbol key did not.
  const copy: WithContext = { ...auth };
  copy[CONTEXT] = context;
  return copy;
}

/** The call context a request's AuthInfo carries, if any. */
export function callContextOf(auth: AuthInfo | undefined): CallContext | undefined {
  return (auth as WithContext | undefined)?.[CONTEXT];
}

/** The tool layer has begun a call of `tool` (its input passed the SDK's check). */
export function noteBegun(auth: AuthInfo | undefined, tool: string): void {
  const ctx = callContextOf(auth);
  if (ctx) ctx.begun.set(tool, (ctx.begun.get(tool) ?? 0) + 1);
}
