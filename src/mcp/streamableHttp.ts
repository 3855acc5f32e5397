import express, { type Request, type RequestHandler, type Response } from 'express';
import { NodeStreamableHTTPServerTransport as StreamableHTTPServerTransport, toNodeHandler } from '@modelcontextprotocol/node';
import { classifyInboundRequest, createMcpHandler, DEFAULT_NEGOTIATED_PROTOCOL_VERSION, INVALID_REQUEST, isInitializeRequest } from '@modelcontextprotocol/server';
import { principalOf } from '../auth/principal.js';
import { traceMcpRequests } from '../tracing/mcpSpans.js';
import { type FairUseOption, limiterOf } from '../limits/mcpRateLimit.js';
import { jsonRpcError } from './jsonRpcError.js';
import type { HttpSession, SharedSessions } from './sharedSessions.js';
import { parseEventId } from './streamEvents.js';
import { sessionNotFound, type TransportOptions } from './transportOptions.js';

export type { HttpSession } from './sharedSessions.js';

/** The Streamable HTTP transport's options: its sessions are shared with every replica (./sharedSessions.ts). */
export type StreamableHttpOptions = Omit<TransportOptions<HttpSession>, 'sessions'> & FairUseOption & { sessions: SharedSessions };


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
 *
 * JSON-RPC batches: the SDK serves up to 100 messages in one POST on every
 * 2025 revision, though 2025-06-18 removed batching. A batch from a client
 * that negotiated 2025-06-18 or later is refused before anything runs or is
 * counted (`refuseBatches`); a 2025-03-26 client may still batch, and the
 * fair-use limit counts each message (src/limits/mcpRateLimit.ts). A 2026-07-28
 * batch is refused there too (by the SDK's classifier when a message names that
 * revision, by its MCP-Protocol-Version header otherwise).
 */
export function streamableHttpRouter(options: StreamableHttpOptions): express.Router {
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

  /**
   * MCP 2025-06-18 basic/transports: "The body of the POST request MUST be a single JSON-RPC
   * request, notification, or response"; for input it cannot accept the server "MUST return an
   * HTTP error status code (e.g., 400 Bad Request)", the body "MAY comprise a JSON-RPC error
   * response that has no id". The error is JSON-RPC's Invalid Request (-32600), as the SDK's
   * 2026-07-28 entry answers a batch. The revision is the session's negotiated one, or the
   * MCP-Protocol-Version header's, whichever is later (none: 2025-03-26, as the SDK assumes).
   * An array the SDK's classifier refuses (empty, or naming 2026-07-28 in a message) gets the
   * SDK's own answer here, before the limit too.
   */
  const refuseBatches: RequestHandler = (req, res, next) => {
    if (!Array.isArray(req.body)) return next();
    const route = classifyInboundRequest({ httpMethod: req.method, protocolVersionHeader: req.get('mcp-protocol-version'), body: req.body });
    if (route.kind === 'reject') return jsonRpcError(res, route.httpStatus, route.code, route.message);
    const sessionId = options.stateless ? undefined : req.get('mcp-session-id');
    // A session held on another replica is not read here: its revision comes from the header.
    const negotiated = sessionId === undefined ? undefined : sessions.heldHere(sessionId, principalOf(req.auth)!)?.protocolVersion();
    const header = req.get('mcp-protocol-version');
    // Revisions are dates (YYYY-MM-DD): they compare as strings, as the SDK compares them.
    let revision: string = DEFAULT_NEGOTIATED_PROTOCOL_VERSION;
    if (negotiated !== undefined && negotiated > revision) revision = negotiated;
    if (header !== undefined && header > revision) revision = header;
    if (revision < FIRST_WITHOUT_BATCHES) return next();
    jsonRpcError(res, 400, INVALID_REQUEST, `Invalid Request: JSON-RPC batches are not supported from protocol revision ${FIRST_WITHOUT_BATCHES} on (this request: ${revision}); send one message per POST`);
  };

  router.use('/mcp', options.authenticate);
  // A span per JSON-RPC message, continuing the trace its `_meta` names (src/tracing/mcpSpans.ts); needs the parsed body.
  const traceMcp = traceMcpRequests();
  if (options.stateless) {
    router.post('/mcp', express.json({ limit: options.bodyLimit ?? '1mb' }), traceMcp, refuseBatches, limit, options.authorizeCalls, async (req: Request, res: Response) => {
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
  router.post('/mcp', express.json({ limit: options.bodyLimit ?? '1mb' }), traceMcp, refuseBatches, limit, options.authorizeCalls, async (req: Request, res: Response) => {
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
    // Registered here and recorded for every replica as the SDK answers this initialize.
    const session = await sessions.open(principal);
    await session.transport.handleRequest(req, res, req.body);
  });

  // GET opens the server-to-client stream; DELETE ends the session (never limited: closing a session frees the server).
  router.get('/mcp', limit, (req, res) => {
    const lastEventId = req.get('last-event-id');
    if (lastEventId !== undefined && !parseEventId(lastEventId)) {
      return jsonRpcError(res, 400, -32000, 'Bad Request: Last-Event-ID is not an event id this server sent (send the id of the last event received)');
    }
    return withSessionHeader(req, res, (t) => t.handleRequest(req, res));
  });
  router.delete('/mcp', (req, res) => withSessionHeader(req, res, (t) => t.handleRequest(req, res)));

  function withSessionHeader(req: Request, res: Response, use: (t: StreamableHTTPServerTransport) => Promise<void>) {
    const sessionId = req.get('mcp-session-id');
    if (!sessionId) return jsonRpcError(res, 400, -32000, 'Bad Request: Mcp-Session-Id header is required');
    return withSession(req, res, sessionId, use);
  }

  /** The session `id` if the caller owns it, held here or rebuilt from the shared table; otherwise 404 (the same for unknown and foreign ids). */
  async function withSession(req: Request, res: Response, id: string, use: (t: StreamableHTTPServerTransport) => Promise<void>) {
    const principal = principalOf(req.auth)!;
    const found = await sessions.resolve(id, principal);
    if (found.found) return use(found.session.transport);
    sessionNotFound(found.reason, id, principal, res, log);
  }

  return router;
}

/** MCP 2025-06-18 changelog: "Remove support for JSON-RPC batching". */
const FIRST_WITHOUT_BATCHES = '2025-06-18';

const isJsonRpc = (body: unknown): boolean =>
  Array.isArray(body) ? body.length > 0 && body.every(isJsonRpc) : typeof body === 'object' && body !== null && (body as { jsonrpc?: unknown }).jsonrpc === '2.0';
