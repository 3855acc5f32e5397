import { AsyncLocalStorage } from 'node:async_hooks';
import type { Principal } from '../auth/principal.js';
import type { AuditKind, AuditOutcome } from '../store/auditStore.js';
import type { AuditInput, AuditWriter } from './auditWriter.js';

/** Which transport (and protocol era) a call came over. */
export type AuditTransport = 'streamable-http' | 'streamable-http-2026' | 'sse';

/** What the HTTP layer knows of a request that carries tool calls; read back where the outcome is decided. */
export interface CallContext {
  requestId?: string;
  transport: AuditTransport;
  /** performance.now() when the request reached the call guard. */
  startedAt: number;
}

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
  private readonly calls = new AsyncLocalStorage<CallContext>();

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

  /** Run `fn` (the rest of the request's handling) with its call context readable by the hooks below. */
  withCall<T>(context: CallContext, fn: () => T): T {
    return this.writer ? this.calls.run(context, fn) : fn();
  }

  /** The call context of the request being handled, if any. */
  currentCall(): CallContext | undefined {
    return this.calls.getStore();
  }

  /** One `tools/call` and how it ended. Fields not given come from the request's call context when there is one. */
  toolCall(r: ToolCallRecord): void {
    if (!this.writer) return;
    const ctx = this.calls.getStore();
    const requestId = r.requestId ?? ctx?.requestId;
    const transport = r.transport ?? ctx?.transport;
    const durationMs = r.durationMs ?? (ctx ? performance.now() - ctx.startedAt : undefined);
    const e: AuditInput = { kind: 'tool_call', sub: r.sub, clientId: r.clientId, scopes: r.scopes.join(' '), tool: r.tool, outcome: r.outcome };
    if (requestId !== undefined) e.requestId = requestId;
    if (transport !== undefined) e.transport = transport;
    if (durationMs !== undefined) e.durationMs = Math.round(durationMs);
    this.writer.record(e);
  }

  /** The SDK-side hook (src/mcp/mcpServer.ts onToolCall): outcome decided inside the tool layer. */
  toolOutcome(tool: string, outcome: ToolCallRecord['outcome'], principal: Principal | undefined, durationMs?: number): void {
    if (!principal) return;
    this.toolCall({ sub: principal.sub, clientId: principal.clientId, scopes: principal.scopes, tool, outcome, ...(this.currentCall() ? {} : durationMs === undefined ? {} : { durationMs }) });
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

  /** An account event. A `requestId` not given is taken from the call context (credential uses inside a tool call). */
  account(event: AccountEvent): void {
    if (!this.writer) return;
    const requestId = event.requestId ?? this.calls.getStore()?.requestId;
    this.writer.record({ ...event, ...(requestId !== undefined ? { requestId } : {}) });
  }

  /** A connected-account credential was used by a tool (src/connections onUse). */
  credentialUsed(provider: string, outcome: 'ok' | 'refreshed' | 'reconnect' | 'unavailable', sub: string | undefined): void {
    if (!sub) return;
    this.account({ kind: 'credential_used', sub, outcome, detail: `provider ${provider}` });
  }

  /** Write what is queued and stop (shutdown). */
  async stop(): Promise<void> {
    await this.writer?.stop();
  }
}
