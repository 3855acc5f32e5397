import type { Request, RequestHandler } from 'express';
import { z } from 'zod';
import { principalOf } from '../auth/principal.js';
import type { ToolDefinition } from '../tools/contract.js';
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
 * - an unknown tool and input its schema refuses are answered by the SDK, so
 *   they are recorded here, before it (unknown_tool, invalid_input; checked
 *   with the tool's own zod schema, as the SDK checks it);
 * - a call the guard refuses with 403 is recorded as insufficient_scope, or
 *   `denied` for a machine client calling a people-only tool;
 * - every other call reaches the tool layer, which records its outcome
 *   (Audit.toolOutcome); the request id, transport and start time reach it
 *   through the call context this sets.
 */
export function auditCallGuard(inner: RequestHandler, { audit, tools, transport }: AuditCallGuardOptions): RequestHandler {
  if (!audit.enabled) return inner;
  return (req, res, next) => {
    const principal = principalOf(req.auth);
    const calls = principal ? toolCalls(req.body) : [];
    if (!principal || calls.length === 0) return inner(req, res, next);
    const requestId = res.get('X-Request-Id');
    const context = { transport: transportOf(req, transport), startedAt: performance.now(), ...(requestId ? { requestId } : {}) };
    const base = { sub: principal.sub, clientId: principal.clientId, scopes: principal.scopes, ...context, durationMs: 0 };
    const known = calls.map((call) => ({ name: call.name.slice(0, 100), tool: tools.get(call.name), args: call.arguments }));
    let passed = false;
    inner(req, res, (err?: unknown) => {
      passed = true;
      // Refused by the SDK after this point, so recorded now; the rest by the tool layer.
      for (const { name, tool, args } of known) {
        if (!tool) audit.toolCall({ ...base, tool: name, outcome: 'unknown_tool' });
        else if (!inputSchemaOf(tool).safeParse(args ?? {}).success) audit.toolCall({ ...base, tool: name, outcome: 'invalid_input' });
      }
      audit.withCall(context, () => next(err as never));
    });
    // The guard answers synchronously when it refuses (403): no call in the request ran.
    if (!passed && res.headersSent) {
      const refused = principal.kind === 'machine' && !res.get('WWW-Authenticate') ? 'denied' : 'insufficient_scope';
      for (const { name, tool } of known) audit.toolCall({ ...base, tool: name, outcome: tool ? refused : 'unknown_tool' });
    }
  };
}
