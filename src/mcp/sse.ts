import express, { type Request, type Response } from 'express';
// The SDK's v2 server has no HTTP+SSE transport; server-legacy keeps a frozen copy (deprecated).
import { SSEServerTransport } from '@modelcontextprotocol/server-legacy/sse';
import { principalOf } from '../auth/principal.js';
import { type FairUseOption, limiterOf } from '../limits/mcpRateLimit.js';
import { jsonRpcError } from './jsonRpcError.js';
import { ownerOf, type Session } from './sessions.js';
import { ownSessionOr404, type TransportOptions } from './transportOptions.js';
import { traceMcpRequests } from '../tracing/mcpSpans.js';

export interface SseSession extends Session {
  transport: SSEServerTransport;
  /** Requests posted and not yet answered (see awaitAnswers). */
  answers?: AwaitedAnswers;
}

/** Counts work in flight (src/app/inFlight.ts): `begin()` returns the function that ends it. */
export interface WorkCounter {
  begin(): () => void;
}

interface AwaitedAnswers {
  /** A message was posted: a request is counted until its answer is sent. Returns what to call if the transport refused the message. */
  posted(message: unknown): () => void;
  /** The stream closed: no answer will come. */
  closed(): void;
}

type Id = string | number;
const isRecord = (m: unknown): m is Record<string, unknown> => typeof m === 'object' && m !== null && !Array.isArray(m);
const idOf = (m: Record<string, unknown>): Id | undefined => (typeof m.id === 'string' || typeof m.id === 'number' ? m.id : undefined);

/**
 * POST /messages is answered 202 before the call runs (the answer goes down
 * the GET /sse stream), so the POST's end says nothing about the call's: each
 * posted request is counted in flight until the transport sends its answer,
 * the client cancels it (no answer then), or the stream closes.
 */
function awaitAnswers(transport: SSEServerTransport, work: WorkCounter): AwaitedAnswers {
  const awaited = new Map<Id, () => void>();
  const settle = (id: Id | undefined) => {
    if (id === undefined) return;
    awaited.get(id)?.();
    awaited.delete(id);
  };
  const send = transport.send.bind(transport);
  transport.send = async (message, options) => {
    try {
      await send(message, options);
    } finally {
      const m = message as Record<string, unknown>;
      if ('result' in m || 'error' in m) settle(idOf(m));
    }
  };
  return {
    posted(message) {
      if (!isRecord(message)) return () => {};
      const id = idOf(message);
      if (message.method === 'notifications/cancelled' && isRecord(message.params)) {
        const cancelled = message.params.requestId;
        if (typeof cancelled === 'string' || typeof cancelled === 'number') settle(cancelled);
        return () => {};
      }
      if (typeof message.method !== 'string' || id === undefined) return () => {};
      settle(id);
      awaited.set(id, work.begin());
      return () => settle(id);
    },
    closed() {
      for (const end of awaited.values()) end();
      awaited.clear();
    },
  };
}

/**
 * The deprecated HTTP+SSE transport (MCP 2024-11-05; deprecated again by
 * 2026-07-28, off with LEGACY_SSE=off): GET /sse opens the
 * stream and names a /messages endpoint; POST /messages?sessionId= carries
 * client messages. Both need a bearer token, and the session belongs to the
 * user and client that opened the stream.
 */
export function sseRouter(options: TransportOptions<SseSession> & FairUseOption & { /** Counts each posted request until it is answered (a graceful stop waits for it). */ work?: WorkCounter }): express.Router {
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
    const answers = options.work ? awaitAnswers(transport, options.work) : undefined;
    sessions.add(id, { owner: ownerOf(principal), transport, close: () => server.close(), ...(answers ? { answers } : {}) });
    res.on('close', () => {
      sessions.remove(id);
      answers?.closed();
      void server.close();
    });
    log.info('session opened', { transport: 'sse', session: id, sub: principal.sub });
    await server.connect(transport);
  });

  router.post(
    '/messages',
    options.authenticate,
    express.json({ limit: options.bodyLimit ?? '1mb' }),
    traceMcpRequests(),
    limit,
    options.authorizeCalls,
    async (req: Request, res: Response) => {
      const id = typeof req.query.sessionId === 'string' ? req.query.sessionId : undefined;
      if (!id) return jsonRpcError(res, 400, -32000, 'Bad Request: sessionId query parameter is required');
      const session = ownSessionOr404(sessions, id, principalOf(req.auth)!, res, log);
      if (!session) return;
      const refused = session.answers?.posted(req.body);
      try {
        await session.transport.handlePostMessage(req, res, req.body);
      } finally {
        // 202: taken; anything else: the transport refused the message, and no answer will come.
        if (res.statusCode !== 202) refused?.();
      }
    },
  );

  return router;
}
