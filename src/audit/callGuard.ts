import type { Request, RequestHandler } from 'express';
import { z } from 'zod';
import { type Principal, principalOf } from '../auth/principal.js';
import type { ToolDefinition } from '../tools/contract.js';
import { type CallContext, withCallContext } from '../mcp/callContext.js';
import type { Audit, AuditTransport, ToolCallRecord } from './audit.js';

export interface AuditCallGuardOptions {
  audit: Audit;
  /** The tools served, by name. */
  tools: ReadonlyMap<string, ToolDefinition>;
  /** /mcp or /messages: the era of a /mcp request is read from its MCP-Protocol-Version header. */
  transport: 'streamable-http' | 'sse';
}

// Parsed input schemas per tool, built once (zod compiles a schema on first use).
const inputSchemas = new WeakMap<ToolDefinition, z.ZodObject>();
const inputSchemaOf = (tool: ToolDefinition) => {
  let s = inputSchemas.get(tool);
  if (!s) inputSchemas.set(tool, (s = z.object(tool.input)));
  return s;
};

/** One `tools/call` of a request: its name (cut to 100 characters), the tool it names (undefined: unknown) and its arguments. */
interface GuardedCall {
  name: string;
  tool: ToolDefinition | undefined;
  args: unknown;
}

/** The `tools/call` messages of a JSON-RPC body (one message or a batch); undefined when it has none. */
function toolCalls(body: unknown, tools: ReadonlyMap<string, ToolDefinition>): GuardedCall[] | undefined {
  // One message (every revision since 2025-06-18 sends no other): no array around it.
  if (!Array.isArray(body)) {
    const call = toolCallOf(body, tools);
    return call && [call];
  }
  let calls: GuardedCall[] | undefined;
  for (const m of body) {
    const call = toolCallOf(m, tools);
    if (call) (calls ??= []).push(call);
  }
  return calls;
}

/** The call a JSON-RPC message makes, if it is a `tools/call` naming a tool. */
function toolCallOf(m: unknown, tools: ReadonlyMap<string, ToolDefinition>): GuardedCall | undefined {
  if (!m || typeof m !== 'object' || (m as { method?: unknown }).method !== 'tools/call') return undefined;
  const params = (m as { params?: { name?: unknown; arguments?: unknown } }).params;
  return typeof params?.name === 'string' ? { name: params.name.slice(0, 100), tool: tools.get(params.name), args: params.arguments } : undefined;
}

/** Input the tool's schema refuses (the SDK's own check, for the cases where its answer is not seen here). */
const refusedInput = ({ tool, args }: GuardedCall) => !inputSchemaOf(tool!).safeParse(args ?? {}).success;

/** A record made here: none of these calls reached the tool layer. */
function recordHere(audit: Audit, principal: Principal, context: CallContext, call: GuardedCall, outcome: ToolCallRecord['outcome']): void {
  audit.toolCall({ sub: principal.sub, clientId: principal.clientId, scopes: principal.scopes, transport: context.transport, requestId: context.requestId, durationMs: 0, tool: call.name, outcome });
}

// The header read straight off Node's (lower-cased) headers: express's req.get lower-cases the name on every call.
const transportOf = (req: Request, transport: AuditCallGuardOptions['transport']): AuditTransport => {
  const version = transport === 'streamable-http' ? req.headers['mcp-protocol-version'] : undefined;
  return typeof version === 'string' && version.startsWith('2026') ? 'streamable-http-2026' : transport;
};

/**
 * Wraps the HTTP layer's call guard (src/mcp/stepUp.ts requireToolScopes) so
 * every `tools/call` leaves one audit record, wherever its outcome is decided:
 *
 * - a call the guard refuses with 403 is recorded as insufficient_scope, or
 *   `denied` for a machine client calling a people-only tool;
 * - an unknown tool is answered by the SDK: recorded here (unknown_tool);
 * - a call the tool layer runs records its own outcome (Audit.toolOutcome),
 *   with the request id, transport and start time of the call context this
 *   puts on the request's AuthInfo (src/mcp/callContext.ts);
 * - a known tool the tool layer never began was refused by the SDK's input
 *   check (or its 2026 header check): invalid_input, recorded when the
 *   response ends. Over SSE the answer is not the POST's response, so there
 *   the input is checked here with the tool's own schema, as the SDK checks it;
 *   likewise for a response cut off before it ended.
 */
export function auditCallGuard(inner: RequestHandler, { audit, tools, transport }: AuditCallGuardOptions): RequestHandler {
  if (!audit.enabled) return inner;
  // Runs for every request that carries a tool call: no named closures (tsx names each one per request) and no spreads.
  return (req, res, next) => {
    const principal = principalOf(req.auth);
    const calls = principal && toolCalls(req.body, tools);
    if (!principal || !calls) return inner(req, res, next);
    const context: CallContext = { transport: transportOf(req, transport), startedAt: performance.now(), begun: new Map(), requestId: res.get('X-Request-Id') || undefined };
    let passed = false;
    inner(req, res, (err?: unknown) => {
      passed = true;
      let known = 0;
      for (const call of calls) {
        if (call.tool) known++;
        else recordHere(audit, principal, context, call, 'unknown_tool');
      }
      if (known > 0 && transport === 'sse') {
        for (const call of calls) if (call.tool && refusedInput(call)) recordHere(audit, principal, context, call, 'invalid_input');
      } else if (known > 0) {
        // `on`, not `once`: a response closes once, and once() wraps each listener in a bound function of its own.
        res.on('close', () => {
          for (const call of calls) {
            if (!call.tool) continue;
            const begun = context.begun.get(call.tool.name) ?? 0;
            if (begun > 0) context.begun.set(call.tool.name, begun - 1);
            // Cut off before it ended: the SDK may not have reached the call yet, so ask the schema.
            else if (res.writableFinished || refusedInput(call)) recordHere(audit, principal, context, call, 'invalid_input');
          }
        });
      }
      if (req.auth) req.auth = withCallContext(req.auth, context);
      next(err as never);
    });
    // The guard answers synchronously when it refuses (403): no call in the request ran.
    if (!passed && res.headersSent) {
      const refused = principal.kind === 'machine' && !res.get('WWW-Authenticate') ? 'denied' : 'insufficient_scope';
      for (const call of calls) recordHere(audit, principal, context, call, call.tool ? refused : 'unknown_tool');
    }
  };
}
