import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The routes we report by name; anything else is "other" (no unbounded labels). */
const ROUTES = new Set(['/mcp', '/sse', '/messages', '/token', '/revoke', '/register', '/authorize', '/login', '/consent', '/logout', '/account', '/healthz', '/readyz']);

export type VerificationKind = 'jwt' | 'introspection';
export type VerificationOutcome = 'ok' | 'invalid' | 'unavailable';
export type CredentialOutcome = 'ok' | 'refreshed' | 'reconnect' | 'unavailable';
export type ToolCallOutcome = 'ok' | 'error' | 'insufficient_scope' | 'revoked';
export type SignInMethod = 'password' | 'kratos';
export type SignInAttemptOutcome = 'ok' | 'invalid_credentials' | 'rate_limited' | 'locked' | 'error';
export type ProviderCall = 'discovery' | 'code_exchange' | 'refresh' | 'revocation';
export type ProviderCallOutcome = 'ok' | 'refused' | 'unavailable';
export type DatabaseDialect = 'sqlite' | 'postgres';
export type Dependency = 'database' | 'migrations' | 'hydra_admin' | 'hydra_jwks' | 'kratos';
/** What the readiness checks found (src/app/readiness.ts): each dependency up or not, and whether /readyz would answer 200. */
export interface ReadinessSnapshot {
  dependencies: Partial<Record<Dependency, boolean>>;
  ready: boolean;
}

// Every label value below is one of a fixed set: anything else is counted as "other",
// so a bad caller or a hostile request can never grow a label set (or leak a value into it).
const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
/** RFC 6749 §5.2 and RFC 8707 §2 codes our /token answers with, plus our 429 and Hydra's outage. */
const TOKEN_OUTCOMES = [
  'ok',
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
  'rate_limited',
  'temporarily_unavailable',
  'server_error',
] as const;
const VERIFICATION_KINDS = ['jwt', 'introspection'] as const;
const VERIFICATION_OUTCOMES = ['ok', 'invalid', 'unavailable'] as const;
const CREDENTIAL_OUTCOMES = ['ok', 'refreshed', 'reconnect', 'unavailable'] as const;
const TOOL_CALL_OUTCOMES = ['ok', 'error', 'insufficient_scope', 'revoked'] as const;
const SIGN_IN_METHODS = ['password', 'kratos'] as const;
const SIGN_IN_OUTCOMES = ['ok', 'invalid_credentials', 'rate_limited', 'locked', 'error'] as const;
const PROVIDER_CALLS = ['discovery', 'code_exchange', 'refresh', 'revocation'] as const;
const PROVIDER_OUTCOMES = ['ok', 'refused', 'unavailable'] as const;
const DIALECTS = ['sqlite', 'postgres'] as const;
const DEPENDENCIES = ['database', 'migrations', 'hydra_admin', 'hydra_jwks', 'kratos'] as const;
/** `value` when it is one of `allowed`, else "other". */
const oneOf = (allowed: readonly string[], value: unknown): string => (typeof value === 'string' && allowed.includes(value) ? value : 'other');

// Seconds. A cached JWT check takes microseconds, an introspection a few milliseconds, an outage the 5 s timeout.
const FAST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
// Tool calls and credential fetches may wait on a provider's refresh (lease up to 30 s) or a person connecting.
const SLOW_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** How long one readiness run serves both gauges of a scrape, after it ends. */
const SHARED_PROBE_MS = 1000;

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
  private readonly verificationLatency = new Histogram({
    name: 'token_verification_duration_seconds',
    help: 'Time to check an access token, by kind, outcome and whether a cached answer was used',
    labelNames: ['kind', 'outcome', 'cache'],
    buckets: FAST_BUCKETS,
    registers: [this.registry],
  });
  private readonly tokenRequests = new Counter({
    name: 'oauth_token_requests_total',
    help: 'Answers of our POST /token, by grant type and outcome (ok or the OAuth error code answered)',
    labelNames: ['grant_type', 'outcome'],
    registers: [this.registry],
  });
  private readonly signIns = new Counter({
    name: 'signin_attempts_total',
    help: 'Sign-in form submissions at /login, by method (password or kratos) and outcome',
    labelNames: ['method', 'outcome'],
    registers: [this.registry],
  });
  private readonly credentialLatency = new Histogram({
    name: 'connected_account_credential_duration_seconds',
    help: 'Time for a tool to get a usable third-party access token, by provider and outcome',
    labelNames: ['provider', 'outcome'],
    buckets: SLOW_BUCKETS,
    registers: [this.registry],
  });
  private readonly providerRequests = new Counter({
    name: 'provider_requests_total',
    help: "Calls to a third-party provider's OAuth endpoints, by provider, call and outcome (refused: an OAuth error; unavailable: network, 5xx or timeout)",
    labelNames: ['provider', 'call', 'outcome'],
    registers: [this.registry],
  });
  private readonly databaseErrors = new Counter({
    name: 'database_errors_total',
    help: 'Database queries that failed, and connections that could not be made, by dialect',
    labelNames: ['dialect'],
    registers: [this.registry],
  });
  private readonly toolLatency = new Histogram({
    name: 'mcp_tool_call_duration_seconds',
    help: 'Tool call latency by tool and outcome (from the request reaching the call guard)',
    labelNames: ['tool', 'outcome'],
    buckets: SLOW_BUCKETS,
    registers: [this.registry],
  });

  /** The configured providers' names (CONNECTIONS_FILE): the only values of the provider label of the metrics below. */
  private providerNames: readonly string[] = [];

  /** Name the configured providers; until then (connected accounts off) every provider label is "other". */
  providersAre(names: Iterable<string>): void {
    this.providerNames = [...names];
  }

  /** Active sessions per transport, read when scraped. */
  sessionsGauge(sizes: () => Record<string, number>): void {
    this.sizesGauge('mcp_sessions_active', 'Live MCP sessions by transport', 'transport', sizes);
  }

  /** Entries in the token verifier's caches, read when scraped (they are bounded; this shows how full). */
  tokenCacheGauge(sizes: () => Record<string, number>): void {
    this.sizesGauge('token_cache_entries', 'Verified tokens held by the verifier caches, by cache', 'cache', sizes);
  }

  /**
   * dependency_up and ready, from one run of the readiness checks per scrape
   * (the checks' own timeouts apply; both gauges share the run that is under way).
   */
  readinessGauges(probe: () => Promise<ReadinessSnapshot>): void {
    let running: Promise<ReadinessSnapshot> | undefined;
    // prom-client collects every metric of a scrape at once: the second gauge joins the first one's run.
    const snapshot = () => (running ??= probe().finally(() => setTimeout(() => (running = undefined), SHARED_PROBE_MS).unref()));
    new Gauge({
      name: 'dependency_up',
      help: 'Whether each dependency passed its readiness check at scrape time (1) or not (0)',
      labelNames: ['dependency'],
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const [dependency, up] of Object.entries((await snapshot()).dependencies)) this.set({ dependency: oneOf(DEPENDENCIES, dependency) }, up ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ready',
      help: 'Whether /readyz would answer 200 at scrape time (0 while stopping)',
      registers: [this.registry],
      async collect() {
        this.set((await snapshot()).ready ? 1 : 0);
      },
    });
  }

  /**
   * The notAfter of the public URL's certificate, in seconds since the epoch,
   * read at scrape time; `read` answers undefined when it could not be had,
   * and the gauge is then left out of the scrape rather than failing it.
   */
  certificateExpiryGauge(read: () => Promise<number | undefined>): void {
    new OptionalGauge(
      {
        name: 'public_url_certificate_expiry_timestamp_seconds',
        help: 'When the certificate the public URL presents expires (notAfter, seconds since the epoch); absent when it could not be read',
        registers: [this.registry],
      },
      read,
    );
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

  verification(kind: VerificationKind, outcome: VerificationOutcome, cached: boolean, seconds?: number): void {
    const labels = { kind: oneOf(VERIFICATION_KINDS, kind), outcome: oneOf(VERIFICATION_OUTCOMES, outcome), cache: cached ? 'hit' : 'miss' };
    this.verifications.inc(labels);
    if (seconds !== undefined) this.verificationLatency.observe(labels, seconds);
  }

  /** One answer of our POST /token: the grant type the request named (any string, or none) and "ok" or the error code answered. */
  tokenRequest(grantType: string | undefined, outcome: string): void {
    this.tokenRequests.inc({ grant_type: oneOf(GRANT_TYPES, grantType), outcome: oneOf(TOKEN_OUTCOMES, outcome) });
  }

  /** One sign-in form submission and how it ended. */
  signInAttempt(method: SignInMethod, outcome: SignInAttemptOutcome): void {
    this.signIns.inc({ method: oneOf(SIGN_IN_METHODS, method), outcome: oneOf(SIGN_IN_OUTCOMES, outcome) });
  }

  /** How long one tool's request for a provider's access token took, and how it ended. */
  credentialDuration(provider: string, outcome: CredentialOutcome, seconds: number): void {
    this.credentialLatency.observe({ provider: oneOf(this.providerNames, provider), outcome: oneOf(CREDENTIAL_OUTCOMES, outcome) }, seconds);
  }

  /** One call to a provider's OAuth endpoints (src/connections/providerClient.ts). */
  providerRequest(provider: string, call: ProviderCall, outcome: ProviderCallOutcome): void {
    this.providerRequests.inc({ provider: oneOf(this.providerNames, provider), call: oneOf(PROVIDER_CALLS, call), outcome: oneOf(PROVIDER_OUTCOMES, outcome) });
  }

  /** A failed query, or a connection that could not be made (src/store/database.ts). */
  databaseError(dialect: DatabaseDialect): void {
    this.databaseErrors.inc({ dialect: oneOf(DIALECTS, dialect) });
  }

  hydraCall(call: string, seconds: number, ok: boolean): void {
    this.hydraLatency.observe({ call, ok: String(ok) }, seconds);
  }

  credentialUse(provider: string, outcome: CredentialOutcome): void {
    this.credentialUses.inc({ provider, outcome });
  }

  /** One tool call and how it ended; `seconds` adds it to mcp_tool_call_duration_seconds. */
  toolCall(tool: string, outcome: ToolCallOutcome, seconds?: number): void {
    // `tool` is a registered tool's name (the SDK refuses others before any tool runs): bounded by the registry.
    const labels = { tool, outcome: oneOf(TOOL_CALL_OUTCOMES, outcome) };
    this.toolCalls.inc(labels);
    if (seconds !== undefined) this.toolLatency.observe(labels, seconds);
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

/**
 * A gauge without labels whose one sample is read at scrape time and left
 * out while there is none: prom-client would report an unset gauge as 0,
 * which for a timestamp reads as "expired in 1970" and fires every alert.
 */
class OptionalGauge extends Gauge {
  constructor(
    configuration: ConstructorParameters<typeof Gauge>[0],
    private readonly read: () => Promise<number | undefined>,
  ) {
    super(configuration);
  }

  override async get(): ReturnType<Gauge['get']> {
    const [value, metric] = await Promise.all([this.read(), super.get()]);
    return { ...metric, values: value === undefined ? [] : [{ value, labels: {} }] };
  }
}
