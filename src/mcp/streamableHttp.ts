import { randomUUID } from 'node:crypto';
import express, { type Request, type Response } from 'express';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { principalOf } from '../auth/principal.js';
import { jsonRpcError } from './jsonRpcError.js';
import { ownerOf, type Session } from './sessions.js';
import { ownSessionOr404, type TransportOptions } from './transportOptions.js';


/**
 * The Streamable HTTP transport at /mcp (MCP 2025-03-26 and later), stateful:
 * `initialize` opens a session bound to the caller; every later request must
 * present the session id with a token of the same user and client.
 */
export function streamableHttpRouter(options: TransportOptions<HttpSession>): express.Router {
  const router = express.Router();
  const { sessions, log } = options;

  router.use('/mcp', options.authenticate);
  if (options.stateless) {
    router.post('/mcp', express.json({ limit: options.bodyLimit ?? '1mb' }), options.authorizeCalls, async (req: Request, res: Response) => {
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
  router.post('/mcp', express.json({ limit: options.bodyLimit ?? '1mb' }), options.authorizeCalls, async (req: Request, res: Response) => {
    const principal = principalOf(req.auth)!;
    const sessionId = req.get('mcp-session-id');
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

  // GET opens the server-to-client stream; DELETE ends the session.
  router.get('/mcp', (req, res) => withSessionHeader(req, res, (t) => t.handleRequest(req, res)));
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

export interface HttpSession extends Session {
  transport: StreamableHTTPServerTransport;
}
