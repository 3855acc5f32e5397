import type { Request, RequestHandler } from 'express';
import { z } from 'zod';
import { principalOf } from '../auth/principal.js';
import type { ToolDefinition } from '../tools/contract.js';
import { type CallContext, withCallContext } from '../mcp/callContext.js';
import type { Audit, AuditTransport } from './audit.js';

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

type ToolCallMessage = { name: string; arguments: unknown };

/** The `tools/call` messages of a JSON-RPC body (one message or a batch). */
function toolCalls(body: unknown): ToolCallMessage[] {
  const messages = Array.isArray(body) ? body : [body];
  const calls: ToolCallMessage[] = [];
  for (const m of messages) {
    if (!m || typeof m !== 'object' || (m as { method?: unknown }).method !== 'tools/call') continue;
    const params = (m as { params?: { name?: unknown; arguments?: unknown } }).params;
    if (typeof params?.name === 'string') calls.push({ name: params.name, arguments: params.arguments });
  }
  return calls;
}

const transportOf = (req: Request, transport: AuditCallGuardOptions['transport']): AuditTransport =>
  transport === 'streamable-http' && req.get('mcp-protocol-version')?.startsWith('2026') ? 'streamable-http-2026' : transport;

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
  return (req, res, next) => {
    const principal = principalOf(req.auth);
    const calls = principal ? toolCalls(req.body) : [];
    if (!principal || calls.length === 0) return inner(req, res, next);
    const requestId = res.get('X-Request-Id');
    const context: CallContext = { transport: transportOf(req, transport), startedAt: performance.now(), begun: new Map(), ...(requestId ? { requestId } : {}) };
    // Built only for a record made here (most calls are recorded by the tool layer).
    const base = () => ({ sub: principal.sub, clientId: principal.clientId, scopes: principal.scopes, transport: context.transport, ...(requestId ? { requestId } : {}), durationMs: 0 });
    const known = calls.map((call) => ({ name: call.name.slice(0, 100), tool: tools.get(call.name), args: call.arguments }));
    const invalid = ({ tool, args }: (typeof known)[number]) => !inputSchemaOf(tool!).safeParse(args ?? {}).success;
    let passed = false;
    inner(req, res, (err?: unknown) => {
      passed = true;
      for (const { name, tool } of known) if (!tool) audit.toolCall({ ...base(), tool: name, outcome: 'unknown_tool' });
      const toCheck = known.filter((k) => k.tool);
      if (transport === 'sse') {
        for (const k of toCheck) if (invalid(k)) audit.toolCall({ ...base(), tool: k.name, outcome: 'invalid_input' });
      } else if (toCheck.length > 0) {
        res.once('close', () => {
          for (const k of toCheck) {
            const begun = context.begun.get(k.tool!.name) ?? 0;
            if (begun > 0) context.begun.set(k.tool!.name, begun - 1);
            // Cut off before it ended: the SDK may not have reached the call yet, so ask the schema.
            else if (res.writableFinished || invalid(k)) audit.toolCall({ ...base(), tool: k.name, outcome: 'invalid_input' });
          }
        });
      }
      if (req.auth) req.auth = withCallContext(req.auth, context);
      next(err as never);
    });
    // The guard answers synchronously when it refuses (403): no call in the request ran.
    if (!passed && res.headersSent) {
      const refused = principal.kind === 'machine' && !res.get('WWW-Authenticate') ? 'denied' : 'insufficient_scope';
      for (const { name, tool } of known) audit.toolCall({ ...base(), tool: name, outcome: tool ? refused : 'unknown_tool' });
    }
  };
}
