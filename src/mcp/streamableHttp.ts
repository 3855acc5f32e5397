import { randomUUID } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import { NodeStreamableHTTPServerTransport as StreamableHTTPServerTransport, toNodeHandler } from '@modelcontextprotocol/node';
import { classifyInboundRequest, createMcpHandler, isInitializeRequest } from '@modelcontextprotocol/server';
import { principalOf } from '../auth/principal.js';
import { type FairUseOption, limiterOf } from '../limits/mcpRateLimit.js';
import { jsonRpcError } from './jsonRpcError.js';
import { ownerOf, type Session } from './sessions.js';
import { ownSessionOr404, type TransportOptions } from './transportOptions.js';


/**
 * The Streamable HTTP transport at /mcp, serving two protocol eras:
 *
 * - MCP 2026-07-28: every request carries its protocol version in `_meta`
 *   (no `initialize`, no sessions); the SDK's per-request entry
 *   (`createMcpHandler`, strict) answers it, `server/discover` included, and
 *   checks the `Mcp-Method`/`Mcp-Name` headers against the body.
 * - MCP 2025-03-26 … 2025-11-25, stateful: `initialize` opens a session bound
 *   to the caller; every later request must present the session id with a
 *   token of the same user and client.
 *
 * The SDK's own classifier (`classifyInboundRequest`, the step behind its
 * `isLegacyRequest`) picks the era, so our routing never disagrees with the
 * SDK's. It is called with the parsed body and headers directly: building a
 * web Request for `isLegacyRequest` on every call cost more than the token check. Both eras pass the same bearer
 * check and step-up scope check first (router middleware below).
 */
export function streamableHttpRouter(options: TransportOptions<HttpSession> & FairUseOption): express.Router {
  const router = express.Router();
  const { sessions, log } = options;
  // Fair use (src/limits/): after the bearer check and body parser (a refusal echoes the JSON-RPC id), before the scope check.
  const limit = limiterOf(options);
  // `legacy: 'reject'`: 2025-era traffic never reaches this handler (it is
  // routed to the sessions below), so nothing is served statelessly by accident.
  const modern = toNodeHandler(
    createMcpHandler(() => options.createServer(), {
      legacy: 'reject',
      onerror: (error) => log.warn('2026-07-28 request refused', { error: error.message }),
    }),
  );
  // toNodeHandler reads `req.auth` (set by options.authenticate) and hands it to tools.
  // A body that is not JSON-RPC at all claims no era; it gets the 2025 answer
  // ("send initialize first"), as before the 2026 path existed.
  const isModern = (req: Request) =>
    isJsonRpc(req.body) &&
    classifyInboundRequest({
      httpMethod: req.method,
      protocolVersionHeader: req.get('mcp-protocol-version'),
      mcpMethodHeader: req.get('mcp-method'),
      mcpNameHeader: req.get('mcp-name'),
      body: req.body,
    }).kind !== 'legacy';

  router.use('/mcp', options.authenticate);
  if (options.stateless) {
    router.post('/mcp', express.json({ limit: options.bodyLimit ?? '1mb' }), limit, options.authorizeCalls, async (req: Request, res: Response) => {
      if (isModern(req)) return modern(req, res, req.body);
      const server = options.createServer();
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, req.body);
    });
    // No sessions: no server-to-client stream to open and nothing to delete.
    router.all('/mcp', (_req, res) => {
      res.set('Allow', 'POST');
      jsonRpcError(res, 405, -32000, 'Method not allowed: this server runs Streamable HTTP without sessions');
    });
    return router;
  }
  router.post('/mcp', express.json({ limit: options.bodyLimit ?? '1mb' }), limit, options.authorizeCalls, async (req: Request, res: Response) => {
    const principal = principalOf(req.auth)!;
    const sessionId = req.get('mcp-session-id');
    if (!sessionId && isModern(req)) return modern(req, res, req.body);
    if (sessionId) return withSession(req, res, sessionId, (t) => t.handleRequest(req, res, req.body));
    if (!isInitializeRequest(req.body)) {
      return jsonRpcError(res, 400, -32000, 'Bad Request: no Mcp-Session-Id; send initialize first');
    }
    const refusal = sessions.refusal(principal);
    if (refusal) {
      res.set('Retry-After', '60');
      return jsonRpcError(res, 503, -32000, refusal);
    }
    const server = options.createServer();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.add(id, { owner: ownerOf(principal), transport, close: () => server.close() });
        log.info('session opened', { transport: 'streamable-http', session: id, sub: principal.sub });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.remove(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  });

  // GET opens the server-to-client stream; DELETE ends the session (never limited: closing a session frees the server).
  router.get('/mcp', limit, (req, res) => withSessionHeader(req, res, (t) => t.handleRequest(req, res)));
  router.delete('/mcp', (req, res) => withSessionHeader(req, res, (t) => t.handleRequest(req, res)));

  function withSessionHeader(req: Request, res: Response, use: (t: StreamableHTTPServerTransport) => Promise<void>) {
    const sessionId = req.get('mcp-session-id');
    if (!sessionId) return jsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    return withSession(req, res, sessionId, use);
  }

  async function withSession(req: Request, res: Response, id: string, use: (t: StreamableHTTPServerTransport) => Promise<void>) {
    const session = ownSessionOr404(sessions, id, principalOf(req.auth)!, res, log);
    if (session) await use(session.transport);
  }

  return router;
}

const isJsonRpc = (body: unknown): boolean =>
  Array.isArray(body) ? body.length > 0 && body.every(isJsonRpc) : typeof body === 'object' && body !== null && (body as { jsonrpc?: unknown }).jsonrpc === '2.0';

export interface HttpSession extends Session {
  transport: StreamableHTTPServerTransport;
}
