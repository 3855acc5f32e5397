import type { Request, RequestHandler, Response, NextFunction } from 'express';
import { type PrincipalKind, principalOf } from '../auth/principal.js';
import { wwwAuthenticate } from '../auth/wwwAuthenticate.js';
import type { ToolDefinition } from '../tools/contract.js';

/** Who may call a tool (ToolDefinition.callers): people only (the default), or people and machine clients. */
export type ToolCallers = NonNullable<ToolDefinition['callers']>;

/** May a caller of this kind call `tool`? */
export function mayCall(tool: Pick<ToolDefinition, 'callers'>, kind: PrincipalKind): boolean {
  return kind === 'person' || tool.callers === 'people-and-machines';
}

export interface StepUpOptions {
  /** Scopes each tool declares, by tool name. */
  toolScopes: ReadonlyMap<string, readonly string[]>;
  /** Who may call each tool, by tool name (absent: people only, the contract's default). */
  toolCallers?: ReadonlyMap<string, ToolCallers | undefined>;
  resourceMetadataUrl: string;
}

/** What a machine client is told when it calls a people-only tool (here and in the tool layer). */
export function machineRefusal(tool: string): string {
  return (
    `access_denied: tool ${tool} may be called by people only; this token belongs to a machine client ` +
    '(client credentials, no person present), and machines may not call it'
  );
}

/**
 * The checks on `tools/call` messages, answered at the HTTP layer so clients
 * see a status they can act on. The tool layer checks both again (defence in
 * depth) for transports that can't answer per message.
 *
 * 1. Callers: a machine principal calling a people-only tool gets 403
 *    `access_denied`. No scope can fix that, so it comes before step-up and
 *    carries no scope challenge.
 * 2. Step-up authorization (MCP 2025-11-25): a call whose token lacks a scope
 *    the tool declares gets 403 with `error="insufficient_scope"`, so clients
 *    can ask the person for more. The challenge lists every scope the client
 *    needs — what it has plus what the tool wants — because some clients
 *    replace their scopes rather than add.
 */
export function requireToolScopes({ toolScopes, toolCallers, resourceMetadataUrl }: StepUpOptions): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const principal = principalOf(req.auth);
    if (!principal) return next();
    const messages = Array.isArray(req.body) ? req.body : [req.body];
    const refused = principal.kind === 'machine' ? peopleOnlyCall(messages, toolScopes, toolCallers) : undefined;
    if (refused) return refuseMachine(res, refused);
    const missing = new Set<string>();
    const wanted = new Set<string>(principal.scopes);
    for (const m of messages) {
      const name = calledTool(m);
      const needs = name !== undefined ? toolScopes.get(name) : undefined;
      for (const s of needs ?? []) {
        wanted.add(s);
        if (!principal.scopes.includes(s)) missing.add(s);
      }
    }
    if (missing.size === 0) return next();
    const scope = [...wanted].join(' ');
    const description = `This call needs scope ${[...missing].join(' ')}`;
    res
      .status(403)
      .set('WWW-Authenticate', wwwAuthenticate({ error: 'insufficient_scope', description, scope, resourceMetadataUrl }))
      .json({ error: 'insufficient_scope', error_description: description, scope });
  };
}

/** The name of the tool a JSON-RPC message calls, if it is a `tools/call`. */
function calledTool(m: unknown): string | undefined {
  if (!m || typeof m !== 'object' || (m as { method?: unknown }).method !== 'tools/call') return undefined;
  const name = (m as { params?: { name?: unknown } }).params?.name;
  return typeof name === 'string' ? name : undefined;
}

/** The first `tools/call` of a known people-only tool, with its JSON-RPC id. Unknown tools pass (the SDK answers them). */
function peopleOnlyCall(
  messages: unknown[],
  toolScopes: ReadonlyMap<string, unknown>,
  toolCallers: ReadonlyMap<string, ToolCallers | undefined> | undefined,
): { tool: string; id: unknown } | undefined {
  for (const m of messages) {
    const tool = calledTool(m);
    if (tool === undefined || !toolScopes.has(tool)) continue;
    if (!mayCall({ callers: toolCallers?.get(tool) }, 'machine')) return { tool, id: (m as { id?: unknown }).id ?? null };
  }
  return undefined;
}

/**
 * 403 with a JSON-RPC error naming the tool: the SDK's client shows the body
 * of a 403 that is not a scope challenge. `data.error` keeps the OAuth-style
 * code for clients that look for one.
 */
function refuseMachine(res: Response, { tool, id }: { tool: string; id: unknown }): void {
  res.status(403).json({ jsonrpc: '2.0', id, error: { code: -32003, message: machineRefusal(tool), data: { error: 'access_denied', tool } } });
}
