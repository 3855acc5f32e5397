import { randomUUID } from 'node:crypto';
import type { JSONRPCMessage } from '@modelcontextprotocol/server';

/** A client's message for a session, handed to the replica that can act on it. */
export interface BusMessage {
  /** The Mcp-Session-Id. */
  session: string;
  /** The replica that received it (it never delivers its own). */
  from: string;
  message: JSONRPCMessage;
}

/**
 * How replicas pass a session's client messages to each other: an answer to
 * a server request (elicitation) or a cancellation that reached a replica
 * other than the one running the call. The SDK's `ServerEventBus` carries only
 * `subscriptions/listen` change events of 2026-07-28, which this server does
 * not send (its tools are fixed), so this is the same shape (publish,
 * subscribe) for session messages.
 */
export interface SessionBus {
  /** This process's id on the bus. */
  readonly replica: string;
  publish(session: string, message: JSONRPCMessage): Promise<void>;
  /** Every message published by another replica; returns an idempotent unsubscribe. */
  subscribe(listener: (m: BusMessage) => void): () => void;
  close(): Promise<void>;
}

/** One process (SQLite, which is one host by definition): nothing to pass on, so nothing is published. */
export class InMemorySessionBus implements SessionBus {
  readonly replica = randomUUID();
  private readonly listeners = new Set<(m: BusMessage) => void>();

  async publish(session: string, message: JSONRPCMessage): Promise<void> {
    this.deliver({ session, from: this.replica, message });
  }

  subscribe(listener: (m: BusMessage) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Hand `m` to every listener but one's own publisher's (also used by PostgresSessionBus). */
  deliver(m: BusMessage): void {
    if (m.from === this.replica) return;
    for (const l of [...this.listeners]) {
      try {
        l(m);
      } catch {
        // A listener's failure is its own; the others still get the message.
      }
    }
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
