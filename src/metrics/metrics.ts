import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The routes we report by name; anything else is "other" (no unbounded labels). */
const ROUTES = new Set(['/mcp', '/sse', '/messages', '/token', '/revoke', '/register', '/authorize', '/login', '/consent', '/logout', '/account', '/healthz', '/readyz']);

export type VerificationKind = 'jwt' | 'introspection';
export type VerificationOutcome = 'ok' | 'invalid' | 'unavailable';

/**
 * Prometheus metrics of one app (its own registry, never prom-client's
 * global one). Served on a separate loopback port, not the public one.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'http_requests_total', help: 'HTTP requests', labelNames: ['route', 'method', 'status'], registers: [this.registry] });
  private readonly latency = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames: ['route', 'method', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  private readonly verifications = new Counter({
    name: 'token_verifications_total',
    help: 'Access token checks by kind, outcome and whether a cached answer was used',
    labelNames: ['kind', 'outcome', 'cache'],
    registers: [this.registry],
  });
  private readonly hydraLatency = new Histogram({
    name: 'hydra_request_duration_seconds',
    help: 'Latency of calls to Hydra (admin and public ports), by call',
    labelNames: ['call', 'ok'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  private readonly credentialUses = new Counter({
    name: 'connected_account_uses_total',
    help: 'Uses of a stored third-party credential by tools, by provider and outcome (ok, refreshed, reconnect, unavailable)',
    labelNames: ['provider', 'outcome'],
    registers: [this.registry],
  });
  private readonly toolCalls = new Counter({ name: 'mcp_tool_calls_total', help: 'Tool calls by tool and outcome', labelNames: ['tool', 'outcome'], registers: [this.registry] });
  private readonly rateLimits = new Counter({
    name: 'mcp_rate_limited_total',
    help: 'MCP requests refused by the fair-use limits, by the bucket that refused (principal or client) and transport',
    labelNames: ['scope', 'transport'],
    registers: [this.registry],
  });
  private readonly auditWritten = new Counter({ name: 'audit_records_written_total', help: 'Audit records written to the database', registers: [this.registry] });
  private readonly auditFailures = new Counter({ name: 'audit_write_failures_total', help: 'Audit records lost because their batch could not be written', registers: [this.registry] });
  private readonly auditDropped = new Counter({ name: 'audit_dropped_total', help: 'Audit records dropped because the in-memory queue was full', registers: [this.registry] });

  /** Active sessions per transport, read when scraped. */
  sessionsGauge(sizes: () => Record<string, number>): void {
    this.sizesGauge('mcp_sessions_active', 'Live MCP sessions by transport', 'transport', sizes);
  }

  /** Entries in the token verifier's caches, read when scraped (they are bounded; this shows how full). */
  tokenCacheGauge(sizes: () => Record<string, number>): void {
    this.sizesGauge('token_cache_entries', 'Verified tokens held by the verifier caches, by cache', 'cache', sizes);
  }

  /** A gauge with one label whose values are read from `sizes` at scrape time. */
  private sizesGauge(name: string, help: string, label: string, sizes: () => Record<string, number>): void {
    new Gauge({
      name,
      help,
      labelNames: [label],
      registers: [this.registry],
      collect() {
        for (const [value, n] of Object.entries(sizes())) this.set({ [label]: value }, n);
      },
    });
  }

  readonly middleware: RequestHandler = (req, res, next) => {
    const end = this.latency.startTimer();
    res.once('finish', () => {
      const route = ROUTES.has(req.path) ? req.path : req.path.startsWith('/.well-known/') ? '/.well-known' : 'other';
      const labels = { route, method: req.method, status: String(res.statusCode) };
      this.requests.inc(labels);
      end(labels);
    });
    next();
  };

  verification(kind: VerificationKind, outcome: VerificationOutcome, cached: boolean): void {
    this.verifications.inc({ kind, outcome, cache: cached ? 'hit' : 'miss' });
  }

  hydraCall(call: string, seconds: number, ok: boolean): void {
    this.hydraLatency.observe({ call, ok: String(ok) }, seconds);
  }

  credentialUse(provider: string, outcome: 'ok' | 'refreshed' | 'reconnect' | 'unavailable'): void {
    this.credentialUses.inc({ provider, outcome });
  }

  toolCall(tool: string, outcome: 'ok' | 'error' | 'insufficient_scope' | 'revoked'): void {
    this.toolCalls.inc({ tool, outcome });
  }

  /** A request refused by a fair-use bucket (src/limits/mcpRateLimit.ts). */
  rateLimited(scope: 'principal' | 'client', transport: 'streamable-http' | 'sse'): void {
    this.rateLimits.inc({ scope, transport });
  }

  /** The audit writer's counts (src/audit/auditWriter.ts): written, lost to a failed write, dropped at a full queue. */
  audit(what: 'written' | 'failed' | 'dropped', n = 1): void {
    ({ written: this.auditWritten, failed: this.auditFailures, dropped: this.auditDropped })[what].inc(n);
  }
}
