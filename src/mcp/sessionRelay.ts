import type { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/server';
import type { Logger } from '../log/logger.js';
import type { BusMessage, SessionBus } from './sessionBus.js';

type Deliver = (message: JSONRPCMessage) => void;

/** What one replica's copy of a session is running and waiting for. */
interface Held {
  deliver: Deliver;
  /** End a cancelled call's POST stream (see `endCancelled`). */
  endCancelled: (id: RequestId) => void;
  /** The client's requests this copy is running (a cancellation for one is acted on here). */
  running: Set<RequestId>;
  /** This copy's requests to the client (elicitation) awaiting an answer (an answer to one is acted on here). */
  awaiting: Set<RequestId>;
}

// Told apart by their members, not the SDK's guards: those parse the whole message with zod,
// on every message of every session, and the transport has validated it already.
const isRequest = (m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId; method: string } => 'method' in m && 'id' in m;
const isAnswer = (m: JSONRPCMessage): m is JSONRPCMessage & { id: RequestId } => 'id' in m && !('method' in m) && ('result' in m || 'error' in m);
const cancelledId = (m: JSONRPCMessage): RequestId | undefined =>
  'method' in m && m.method === 'notifications/cancelled' && !('id' in m) ? (m.params as { requestId?: RequestId } | undefined)?.requestId : undefined;

/**
 * A 2025 session's client messages that belong to another replica: the
 * client's answer to a server request (URL elicitation) and its cancellation
 * of a call reach whichever replica the balancer picks, while the call runs
 * (and waits) on the replica that received it. Each replica's copy of a
 * session knows what it runs and awaits; a message for neither is published
 * on the bus, and the copy that runs or awaits it acts on it. Requests and
 * everything the server sends stay where they are: a call's progress,
 * logging and elicitation requests travel on its own POST stream, and a
 * client that lost that stream resumes it from the shared event log
 * (./streamEvents.ts).
 */
export class SessionRelay {
  private readonly held = new Map<string, Held>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly bus: SessionBus,
    private readonly log: Logger,
  ) {
    this.unsubscribe = bus.subscribe((m) => this.received(m));
  }

  /**
   * Watch `transport` (connected to its server) for messages of other
   * replicas. `sessionId` is read when a message passes: a new session takes
   * its id while its `initialize` is handled. Returns the detach for close.
   */
  attach(transport: NodeStreamableHTTPServerTransport): () => void {
    const deliver = transport.onmessage;
    if (!deliver) throw new Error('SessionRelay.attach: connect the server to the transport first');
    const held: Held = { deliver: (m) => deliver(m), endCancelled: (id) => endCancelled(transport, id, this.log), running: new Set(), awaiting: new Set() };
    let registered: string | undefined;
    const register = () => {
      if (registered === undefined && transport.sessionId !== undefined) {
        registered = transport.sessionId;
        this.held.set(registered, held);
      }
    };
    transport.onmessage = (message, extra) => {
      register();
      if (isRequest(message)) held.running.add(message.id);
      else if (isAnswer(message) && !held.awaiting.delete(message.id)) return this.pass(transport.sessionId, message);
      else {
        const cancelled = cancelledId(message);
        if (cancelled !== undefined) {
          if (!held.running.delete(cancelled)) return this.pass(transport.sessionId, message);
          deliver(message, extra);
          return held.endCancelled(cancelled);
        }
      }
      deliver(message, extra);
    };
    const send = transport.send.bind(transport);
    transport.send = (message, options) => {
      register();
      if (isRequest(message)) held.awaiting.add(message.id);
      else if (isAnswer(message)) held.running.delete(message.id);
      return send(message, options);
    };
    return () => {
      if (registered !== undefined && this.held.get(registered) === held) this.held.delete(registered);
    };
  }

  close(): void {
    this.unsubscribe();
    this.held.clear();
  }

  private pass(session: string | undefined, message: JSONRPCMessage): void {
    if (session === undefined) return;
    this.bus.publish(session, message).catch((e: unknown) => this.log.warn('session bus: a client message for another replica was not passed on', { session, error: e }));
  }

  private received({ session, message }: BusMessage): void {
    const held = this.held.get(session);
    if (!held) return;
    if (isAnswer(message)) {
      if (held.awaiting.delete(message.id)) held.deliver(message);
      return;
    }
    const cancelled = cancelledId(message);
    if (cancelled !== undefined && held.running.delete(cancelled)) {
      held.deliver(message);
      held.endCancelled(cancelled);
    }
  }
}

/**
 * After a 2025 client cancels a call, the server sends it no answer (MCP
 * 2025-06-18 utilities/cancellation), so the SDK keeps the call's POST stream
 * open for good: a leak per cancelled call, and a request in flight that holds
 * up every graceful stop until its deadline. The stream is closed instead, and
 * the call is marked answered (an error no client sees: the stream is gone
 * first; a client resuming it is told the call was cancelled).
 */
function endCancelled(transport: NodeStreamableHTTPServerTransport, id: RequestId, log: Logger): void {
  transport.closeSSEStream(id);
  transport.send({ jsonrpc: '2.0', id, error: { code: REQUEST_CANCELLED, message: 'Request cancelled' } }).catch((e: unknown) => log.debug('cancelled call already ended', { error: e }));
}

/** JSON-RPC has no code for it; -32800 is the one LSP uses. */
const REQUEST_CANCELLED = -32800;
