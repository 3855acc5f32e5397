import type { Principal } from '../auth/principal.js';
import type { CallContext, CallTransport } from '../mcp/callContext.js';
import type { AuditKind, AuditOutcome } from '../store/auditStore.js';
import type { AuditInput, AuditWriter } from './auditWriter.js';

/** Which transport (and protocol era) a call came over. */
export type AuditTransport = CallTransport;

/** A tool call's record as the hooks (and the lead's rate limiter) report it. */
export interface ToolCallRecord {
  sub: string;
  clientId: string;
  /** The scopes the token carried. */
  scopes: readonly string[];
  tool: string;
  outcome: Extract<AuditOutcome, 'ok' | 'error' | 'insufficient_scope' | 'revoked' | 'rate_limited' | 'invalid_input' | 'unknown_tool' | 'denied'>;
  durationMs?: number;
  requestId?: string;
  transport?: AuditTransport;
}

/** An account event (sign-in, consent, registration, credential use). */
export interface AccountEvent {
  kind: Exclude<AuditKind, 'tool_call'>;
  outcome: AuditOutcome;
  sub?: string;
  clientId?: string;
  clientName?: string;
  requestId?: string;
  /** A short reason; never an email, password or token. */
  detail?: string;
}

/** How the identity side reports an account event (Audit.account, bound). */
export type RecordAccountEvent = (event: AccountEvent) => void;

/**
 * The audit trail as the rest of the server sees it. Every method returns at
 * once and never throws: writing happens later, off the request path
 * (AuditWriter). With AUDIT=off it is `Audit.off()`, which drops everything.
 */
export class Audit {
  // The last scopes list and its joined form: a verifier hands every request of a token the
  // same list, and a busy caller's calls come in runs (a join per call was an allocation per call).
  private joinedFor: readonly string[] | undefined;
  private joined = '';

  private constructor(private readonly writer: AuditWriter | undefined) {}

  static over(writer: AuditWriter): Audit {
    return new Audit(writer);
  }

  static off(): Audit {
    return new Audit(undefined);
  }

  get enabled(): boolean {
    return this.writer !== undefined;
  }

  /** One `tools/call` and how it ended. */
  toolCall(r: ToolCallRecord): void {
    if (!this.writer) return;
    this.writer.record(this.toolEvent(r.sub, r.clientId, r.scopes, r.tool, r.outcome, r.durationMs, r.requestId, r.transport));
  }

  /**
   * The SDK-side hook (src/mcp/mcpServer.ts onToolCall): outcome decided inside
   * the tool layer. With the request's call context (src/mcp/callContext.ts),
   * its request id and transport, and the duration since the request reached the guard.
   */
  toolOutcome(tool: string, outcome: ToolCallRecord['outcome'], principal: Principal | undefined, durationMs?: number, context?: CallContext): void {
    if (!principal || !this.writer) return;
    const duration = context ? performance.now() - context.startedAt : durationMs;
    // Straight to the event, no record object between: this runs for every tool call.
    this.writer.record(this.toolEvent(principal.sub, principal.clientId, principal.scopes, tool, outcome, duration, context?.requestId || undefined, context?.transport));
  }

  /** A tool call's event: the fields given, an absent one left out (not stored as undefined). */
  private toolEvent(sub: string, clientId: string, scopes: readonly string[], tool: string, outcome: ToolCallRecord['outcome'], durationMs: number | undefined, requestId: string | undefined, transport: AuditTransport | undefined): AuditInput {
    if (scopes !== this.joinedFor) {
      this.joinedFor = scopes;
      this.joined = scopes.join(' ');
    }
    const e: AuditInput = { kind: 'tool_call', sub, clientId, scopes: this.joined, tool, outcome };
    if (requestId !== undefined) e.requestId = requestId;
    if (transport !== undefined) e.transport = transport;
    if (durationMs !== undefined) e.durationMs = Math.round(durationMs);
    return e;
  }

  /**
   * A request the fair-use limit refused (src/limits/mcpRateLimit.ts `onLimited`):
   * a `tools/call` is recorded as `rate_limited`; other methods are not tool
   * calls and leave no record (a flood of them would only crowd the queue).
   */
  rateLimited(e: { sub: string; clientId: string; transport: 'streamable-http' | 'sse'; tool?: string; requestId?: string; scopes?: readonly string[] }): void {
    if (e.tool === undefined) return;
    this.toolCall({ sub: e.sub, clientId: e.clientId, scopes: e.scopes ?? [], tool: e.tool.slice(0, 100), outcome: 'rate_limited', transport: e.transport, durationMs: 0, ...(e.requestId ? { requestId: e.requestId } : {}) });
  }

  /** An account event (copied: the writer stamps what it is given). */
  account(event: AccountEvent): void {
    this.writer?.record({ ...event });
  }

  /** A connected-account credential was used by a tool (src/connections onUse), in the tool call `requestId`. */
  credentialUsed(provider: string, outcome: 'ok' | 'refreshed' | 'reconnect' | 'unavailable', sub: string | undefined, requestId?: string): void {
    if (!sub || !this.writer) return;
    // Built here, not copied through account(): this runs beside every tool call that uses a connected account.
    const e: AuditInput = { kind: 'credential_used', sub, outcome, detail: `provider ${provider}` };
    if (requestId) e.requestId = requestId;
    this.writer.record(e);
  }

  /** Write what is queued and stop (shutdown). */
  async stop(): Promise<void> {
    await this.writer?.stop();
  }
}
