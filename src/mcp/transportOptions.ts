import type { RequestHandler, Response } from 'express';
import type { McpServer } from '@modelcontextprotocol/server';
import type { Principal } from '../auth/principal.js';
import type { Logger } from '../log/logger.js';
import { jsonRpcError } from './jsonRpcError.js';
import type { Session, SessionRegistry } from './sessions.js';

/** What both MCP transports (Streamable HTTP, legacy SSE) are built from. */
export interface TransportOptions<S extends Session> {
  /** Builds a fresh MCP server for a new session. */
  createServer: () => McpServer;
  /** Runs before the transport: bearer authentication. */
  authenticate: RequestHandler;
  /** Runs on parsed POST bodies: the per-tool scope check (step-up). */
  authorizeCalls: RequestHandler;
  sessions: SessionRegistry<S>;
  log: Logger;
  /** Largest JSON-RPC body accepted. */
  bodyLimit?: string;
  /**
   * Streamable HTTP without sessions: every POST is served by a fresh server
   * and transport, so any replica can answer any request (no affinity needed).
   */
  stateless?: boolean;
}

/**
 * The session `id` if `principal` owns it; otherwise answers 404 (the same
 * for unknown and foreign ids, so a session's existence is not revealed) and
 * logs a foreign use.
 */
export function ownSessionOr404<S extends Session>(
  sessions: SessionRegistry<S>,
  id: string,
  principal: Principal,
  res: Response,
  log: Logger,
): S | undefined {
  const found = sessions.lookup(id, principal);
  if (found.found) return found.session;
  sessionNotFound(found.reason, id, principal, res, log);
  return undefined;
}

/** Answers 404 for a session id the caller may not use (unknown, or another principal's: logged). */
export function sessionNotFound(reason: 'unknown' | 'not_owner', id: string, principal: Principal, res: Response, log: Logger): void {
  if (reason === 'not_owner') {
    log.warn('session used by another principal', { session: id, sub: principal.sub, client_id: principal.clientId });
  }
  jsonRpcError(res, 404, -32001, 'Session not found');
}
