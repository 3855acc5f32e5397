import type { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { type ClientCapabilities, type Implementation, WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/server';

/** The id of the replayed `initialize`: its answer is for this module, never a client's stream. */
export const RESTORE_REQUEST_ID = 'session-restore';

/** What `initialize` settled, as recorded in the shared session table. */
export interface InitializedState {
  protocolVersion: string;
  clientCapabilities: ClientCapabilities;
  clientInfo: Implementation;
}

/**
 * Bring a fresh transport (whose `sessionIdGenerator` returns the recorded
 * id) and its connected server into the state the original `initialize` left
 * them in, so they accept the session's next request: the recorded
 * `initialize` is replayed through the SDK's own handling (the transport marks
 * itself initialized and takes the id; the server negotiates the same
 * revision and keeps the client's capabilities and info), then
 * `notifications/initialized`. Nothing is sent to the client.
 *
 * The SDK offers no public way to restore an initialized session (its PR
 * #1193, a session store, was closed unmerged), and the Node transport takes
 * only Node requests. The one private step is reaching the Web-standard
 * transport the Node one wraps (`webTransportOf`); the hot path keeps the Node
 * transport as it is (its Node adapter cancels an SSE stream the moment the
 * client leaves; the public `toNodeHandler` notices only at the next write).
 * test/mcp/sessionRestore.test.ts fails if that field moves.
 */
export async function restoreInitialized(transport: NodeStreamableHTTPServerTransport, state: InitializedState): Promise<void> {
  const web = webTransportOf(transport);
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    web.handleRequest(
      new Request('http://session-restore.invalid/mcp', {
        method: 'POST',
        headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json', ...headers },
      }),
      { parsedBody: body },
    );
  const init = await post({
    jsonrpc: '2.0',
    id: RESTORE_REQUEST_ID,
    method: 'initialize',
    params: { protocolVersion: state.protocolVersion, capabilities: state.clientCapabilities, clientInfo: state.clientInfo },
  });
  const answer = await answerOf(init);
  const negotiated = (answer as { result?: { protocolVersion?: unknown } }).result?.protocolVersion;
  if (init.status !== 200 || negotiated !== state.protocolVersion) {
    throw new Error(`session restore: initialize answered ${init.status} with revision ${String(negotiated)}, expected ${state.protocolVersion}`);
  }
  const sessionId = transport.sessionId;
  if (sessionId === undefined) throw new Error('session restore: the transport took no session id');
  const initialized = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': sessionId, 'mcp-protocol-version': state.protocolVersion });
  if (initialized.status !== 202) throw new Error(`session restore: notifications/initialized answered ${initialized.status}`);
}

/** The Web-standard transport inside the Node one: the only private field this project reads. */
export function webTransportOf(transport: NodeStreamableHTTPServerTransport): WebStandardStreamableHTTPServerTransport {
  const inner = (transport as unknown as { _webStandardTransport?: unknown })._webStandardTransport;
  if (!(inner instanceof WebStandardStreamableHTTPServerTransport)) {
    throw new Error('@modelcontextprotocol/node changed: NodeStreamableHTTPServerTransport no longer keeps its WebStandardStreamableHTTPServerTransport in _webStandardTransport (src/mcp/sessionRestore.ts)');
  }
  return inner;
}

/** The one JSON-RPC message of an answer, sent as JSON or as a one-event SSE stream. */
async function answerOf(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) return JSON.parse(text) as unknown;
  // A resumable stream opens with an empty priming event (MCP 2025-11-25); the answer is the event with data.
  const data = text.split('\n').find((l) => l.startsWith('data: ') && l.length > 'data: '.length);
  return data ? (JSON.parse(data.slice('data: '.length)) as unknown) : undefined;
}
