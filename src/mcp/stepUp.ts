import type { Request, RequestHandler, Response, NextFunction } from 'express';
import { principalOf } from '../auth/principal.js';
import { wwwAuthenticate } from '../auth/wwwAuthenticate.js';

export interface StepUpOptions {
  /** Scopes each tool declares, by tool name. */
  toolScopes: ReadonlyMap<string, readonly string[]>;
  resourceMetadataUrl: string;
}

/**
 * Step-up authorization (MCP 2025-11-25): a `tools/call` whose token lacks a
 * scope the tool declares is answered at the HTTP layer with 403 and
 * `error="insufficient_scope"`, so clients can ask the person for more. The
 * challenge lists every scope the client needs — what it has plus what the
 * tool wants — because some clients replace their scopes rather than add.
 * The tool layer checks again (defence in depth) for transports that can't
 * answer per message.
 */
export function requireToolScopes({ toolScopes, resourceMetadataUrl }: StepUpOptions): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const principal = principalOf(req.auth);
    if (!principal) return next();
    const messages = Array.isArray(req.body) ? req.body : [req.body];
    const missing = new Set<string>();
    const wanted = new Set<string>(principal.scopes);
    for (const m of messages) {
      if (!m || typeof m !== 'object' || (m as { method?: unknown }).method !== 'tools/call') continue;
      const name = (m as { params?: { name?: unknown } }).params?.name;
      const needs = typeof name === 'string' ? toolScopes.get(name) : undefined;
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
