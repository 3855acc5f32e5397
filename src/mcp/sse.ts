import express, { type Request, type Response } from 'express';
// The SDK's v2 server has no HTTP+SSE transport; server-legacy keeps a frozen copy (deprecated).
import { SSEServerTransport } from '@modelcontextprotocol/server-legacy/sse';
import { principalOf } from '../auth/principal.js';
import { type FairUseOption, limiterOf } from '../limits/mcpRateLimit.js';
import { jsonRpcError } from './jsonRpcError.js';
import { ownerOf, type Session } from './sessions.js';
import { ownSessionOr404, type TransportOptions } from './transportOptions.js';

export interface SseSession extends Session {
  transport: SSEServerTransport;
}

/**
 * The deprecated HTTP+SSE transport (MCP 2024-11-05; deprecated again by
 * 2026-07-28, off with LEGACY_SSE=off): GET /sse opens the
 * stream and names a /messages endpoint; POST /messages?sessionId= carries
 * client messages. Both need a bearer token, and the session belongs to the
 * user and client that opened the stream.
 */
export function sseRouter(options: TransportOptions<SseSession> & FairUseOption): express.Router {
  const router = express.Router();
  const { sessions, log } = options;
  // Fair use (src/limits/): after the bearer check (and body parser, so a refusal echoes the JSON-RPC id).
  const limit = limiterOf(options);

  router.get('/sse', options.authenticate, limit, async (req: Request, res: Response) => {
    const principal = principalOf(req.auth)!;
    const refusal = sessions.refusal(principal);
    if (refusal) {
      res.set('Retry-After', '60');
      return jsonRpcError(res, 503, -32000, refusal);
    }
    const transport = new SSEServerTransport('/messages', res);
    const server = options.createServer();
    const id = transport.sessionId;
    sessions.add(id, { owner: ownerOf(principal), transport, close: () => server.close() });
    res.on('close', () => {
      sessions.remove(id);
      void server.close();
    });
    log.info('session opened', { transport: 'sse', session: id, sub: principal.sub });
    await server.connect(transport);
  });

  router.post(
    '/messages',
    options.authenticate,
    express.json({ limit: options.bodyLimit ?? '1mb' }),
    limit,
    options.authorizeCalls,
    async (req: Request, res: Response) => {
      const id = typeof req.query.sessionId === 'string' ? req.query.sessionId : undefined;
      if (!id) return jsonRpcError(res, 400, -32000, 'Bad Request: sessionId query parameter is required');
      const session = ownSessionOr404(sessions, id, principalOf(req.auth)!, res, log);
      if (session) await session.transport.handlePostMessage(req, res, req.body);
    },
  );

  return router;
}
