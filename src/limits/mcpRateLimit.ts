import { createHash } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { LruCache } from '../lib/lruCache.js';
import { type Principal, principalOf } from '../auth/principal.js';
import type { Logger } from '../log/logger.js';
import type { BucketSpec, TokenBuckets } from '../store/tokenBuckets.js';

/** One fair-use allowance: a sustained rate and the burst a quiet caller may spend at once. */
export interface FairUseLimit {
  requestsPerMinute: number;
  burst: number;
}

/**
 * A shared allowance for the clients an operator names. Only those have one: for any other
 * client a few of its users (self-registration is open, and a public client's id, a metadata
 * document URL among them, is public) could spend it and lock every other user of the client out.
 */
export interface ClientFairUseLimit extends FairUseLimit {
  /** The clients whose people share one bucket (machine clients, an app known to be abused); none: no client has one. */
  clientIds: readonly string[];
}

/** Which bucket refused: the caller's own (`sub` + client), or the client's, shared by all its people. */
export type LimitScope = 'principal' | 'client';

export type McpTransportName = 'streamable-http' | 'sse';

/** What `onLimited` is told about a refused request (for the audit trail: outcome `rate_limited`). */
export interface LimitedEvent {
  sub: string;
  clientId: string;
  transport: McpTransportName;
  /** The JSON-RPC method of the message (one event per message of a batch), or the HTTP method when it carries none (GET /sse, GET /mcp). */
  method: string;
  /** The tool, for a `tools/call`. */
  tool?: string;
  /** The HTTP request id (X-Request-Id), as the request log writes it. */
  requestId?: string;
  /** The JSON-RPC id of the refused message, when it has one. */
  jsonRpcId?: string | number;
  scope: LimitScope;
  retryAfterSeconds: number;
}

export interface McpRateLimitOptions {
  /** The buckets every replica shares (the `rate_counters` table). */
  buckets: TokenBuckets;
  /** Per principal: one person through one app (or one machine client). */
  principal: FairUseLimit;
  /** Per client, all its people together, for the clients it names only; absent: no per-client bucket. */
  client?: ClientFairUseLimit;
  /** Told of every refused message (each of a batch; once for a request without JSON-RPC); a throw is logged, never answered. */
  onLimited?: (event: LimitedEvent) => void;
  /** Counts refusals (metrics). */
  onCounted?: (scope: LimitScope, transport: McpTransportName) => void;
  log: Logger;
  now?: () => number;
  /** Most refusals and leases remembered by this process. */
  maxRemembered?: number;
  /**
   * Tokens a process takes from the shared buckets in one statement and spends
   * itself over the next second (default: an eighth of the smaller burst, 1 to 8;
   * 1 takes one per request). Unspent ones are lost, never given twice.
   */
  leaseSize?: number;
  /** Longest a refusal is held before it is answered (default MAX_HOLD_MS; 0 answers at once). */
  maxHoldMs?: number;
  /** Most refusals held at once by this limiter, one per process (default 1,000); past it, refusals are answered at once. */
  maxHeld?: number;
}

/** JSON-RPC error code of a refusal: outside the JSON-RPC reserved range, as MCP 2026-07-28 asks of application codes; it mirrors HTTP 429. */
export const RATE_LIMITED_CODE = 429;

const MAX_KEY = 512;
const WARN_EVERY_MS = 60_000;
/** How long a process may spend tokens it leased: past it they are dropped (the limit errs low, never high). */
const LEASE_MS = 1000;
/** The most tokens one take leases (for a caller with a large burst that spends them fast). */
const MAX_LEASE = 256;
/** The longest a refusal is held: a held client waits no more than this past its own retry time, and shutdown not much longer. */
export const MAX_HOLD_MS = 1000;
const MAX_HELD = 1000;

/**
 * Fair-use limits on /mcp, /sse and /messages: after the bearer check, each
 * request takes a token from the caller's bucket and then, for a client the
 * operator named, from its client's (src/store/tokenBuckets.ts, shared by
 * every replica). A JSON-RPC batch (MCP 2025-03-26) takes one token per
 * message, all or none: batching must not multiply the limit. Over the limit:
 * 429 with Retry-After (RFC 6585 §4); a POST carrying JSON-RPC requests gets a
 * JSON-RPC error per request (id echoed), anything else a plain JSON body.
 *
 * Fast paths, both keeping the cross-replica bound (no more admitted in all
 * than the shared buckets granted):
 * - a bucket that refused stays empty until its retry time whatever other
 *   replicas do (its full-again time only moves forward), so this process
 *   remembers the refusal and answers the rest of a flood without the database;
 * - an admission takes a few tokens at once (`leaseSize`), and the next
 *   requests of the same caller here spend them without the database; a
 *   caller that spends a whole lease within its second gets twice as many
 *   next time (up to `maxLeaseSize`), so a busy caller costs one database
 *   write per many requests while an occasional one wastes few tokens.
 *
 * Each refusal is held until the retry time (at most `maxHoldMs`) before the
 * 429 is sent: a client that ignores Retry-After cannot make the server spend
 * its time refusing it (a closed loop of C requests gets about C answers per
 * hold). At most `maxHeld` are held at once (past it, answered at once); a
 * client that disconnects while held is sent nothing.
 */
export function createMcpRateLimit(options: McpRateLimitOptions) {
  const now = options.now ?? Date.now;
  const refusedUntil = new LruCache<number>(options.maxRemembered ?? 10_000, now);
  const principalSpec = specOf('principal', options.principal);
  const clientSpec = options.client && specOf('client', options.client);
  const limitedClients = new Set(clientSpec ? clientIdsOf(options.client!) : []);
  let lastWarnedAt = -Infinity;
  const eighth = Math.floor(Math.min(options.principal.burst, limitedClients.size > 0 ? options.client!.burst : Infinity) / 8);
  const leaseSize = options.leaseSize ?? Math.max(1, Math.min(8, eighth));
  if (!Number.isInteger(leaseSize) || leaseSize < 1) throw new TypeError(`fair-use leaseSize must be a positive integer, got ${leaseSize}`);
  // An eighth of the burst at most: a lease dropped unspent never costs a caller much of it.
  const maxLeaseSize = options.leaseSize ?? Math.max(leaseSize, Math.min(MAX_LEASE, eighth));
  const leases = new LruCache<{ tokens: number; size: number }>(options.maxRemembered ?? 10_000, now);
  const maxHoldMs = options.maxHoldMs ?? MAX_HOLD_MS;
  if (!Number.isInteger(maxHoldMs) || maxHoldMs < 0 || maxHoldMs > MAX_HOLD_MS) throw new TypeError(`fair-use maxHoldMs must be an integer from 0 to ${MAX_HOLD_MS}, got ${maxHoldMs}`);
  const maxHeld = options.maxHeld ?? MAX_HELD;
  if (!Number.isInteger(maxHeld) || maxHeld < 0) throw new TypeError(`fair-use maxHeld must be a non-negative integer, got ${maxHeld}`);
  let held = 0;

  /** Sends the 429 after `delayMs` (unless too many are held already); nothing if the client leaves first. */
  function refuseLater(req: Request, res: Response, r: Refusal, delayMs: number): void {
    if (delayMs <= 0 || held >= maxHeld) return refuse(req, res, r);
    held++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      held--;
      clearTimeout(timer);
      res.off('close', release);
    };
    // Unref'd: a held refusal never keeps the process alive; the listening server does while it runs.
    const timer = setTimeout(() => {
      release();
      if (!res.destroyed && !res.writableEnded) refuse(req, res, r);
    }, delayMs).unref();
    res.once('close', release);
  }

  /** `cost` tokens from this caller's lease, if it holds that many: no database, no promise (the path of nearly every request of a busy caller). */
  function spendLeased(principalKey: string, cost: number): boolean {
    // A lease lives one second: whether it was used recently matters not for which one is evicted.
    const lease = leases.peek(principalKey);
    if (!lease || lease.tokens < cost) return false;
    lease.tokens -= cost;
    return true;
  }

  async function decide(principal: Principal, principalKey: string, cost: number): Promise<{ scope: LimitScope; retryAfterMs: number } | undefined> {
    const clientKey = limitedClients.has(principal.clientId) ? bucketKey('c', [principal.clientId]) : undefined;
    const t = now();
    const lease = leases.get(principalKey);
    // Spent within its second: this caller is busy, lease more.
    const size = lease ? Math.min(maxLeaseSize, lease.size * 2) : leaseSize;
    let until = refusedUntil.get(principalKey);
    if (until !== undefined && until > t) return { scope: 'principal', retryAfterMs: until - t };
    until = clientKey === undefined ? undefined : refusedUntil.get(clientKey);
    if (until !== undefined && until > t) return { scope: 'client', retryAfterMs: until - t };
    const chain: BucketSpec[] = [{ key: principalKey, ...principalSpec }];
    if (clientKey !== undefined) chain.push({ key: clientKey, ...clientSpec! });
    const result = await options.buckets.take(chain, t, Math.max(size, cost), cost);
    if (result.admitted) {
      if (result.granted > cost) leases.set(principalKey, { tokens: result.granted - cost, size }, LEASE_MS);
      return undefined;
    }
    const scope = result.refusedBy === 0 ? 'principal' : 'client';
    const spec = scope === 'principal' ? principalSpec : clientSpec!;
    // Remembered only while the bucket is empty: a batch may be refused by one that still holds a
    // few tokens (retryAfterMs is until it holds `cost`), and a single request would be admitted.
    const emptyMs = cost > spec.burst ? 0 : result.retryAfterMs - (cost - 1) * spec.intervalMs;
    if (emptyMs > 0) refusedUntil.set(scope === 'principal' ? principalKey : clientKey!, t + emptyMs, emptyMs);
    return { scope, retryAfterMs: result.retryAfterMs };
  }

  /** Asks the buckets (a caller without enough lease left) and answers or refuses the request. */
  async function checkAndServe(req: Request, res: Response, next: NextFunction, principal: Principal, principalKey: string, transport: McpTransportName, cost: number): Promise<void> {
    let refusal: Awaited<ReturnType<typeof decide>>;
    try {
      refusal = await decide(principal, principalKey, cost);
    } catch (error) {
      // The database is the limit's memory; while it fails, serve (the tools' own queries report the outage),
      // and say so once per WARN_EVERY_MS, not once per request.
      if (now() - lastWarnedAt >= WARN_EVERY_MS) {
        lastWarnedAt = now();
        options.log.warn('fair-use limit not checked: the shared buckets failed', { error: (error as Error).message });
      }
      return next();
    }
    if (!refusal) return next();
    const retryAfterSeconds = Math.max(1, Math.ceil(refusal.retryAfterMs / 1000));
    const limit = refusal.scope === 'principal' ? options.principal : options.client!;
    refuseLater(req, res, { scope: refusal.scope, retryAfterSeconds, limit, cost }, Math.min(refusal.retryAfterMs, maxHoldMs));
    options.onCounted?.(refusal.scope, transport);
    if (options.onLimited) {
      // One event per message: each `tools/call` of a refused batch leaves its own audit record.
      for (const event of eventsOf(req, principal, transport)) {
        try {
          options.onLimited({ ...event, scope: refusal.scope, retryAfterSeconds });
        } catch (error) {
          options.log.warn('onLimited failed', { error: (error as Error).message });
        }
      }
    }
  }

  // The last caller's bucket key, kept: a busy caller's requests come in runs, and the key is a JSON string.
  let last = { sub: '', clientId: '', key: '' };
  const principalKeyOf = ({ sub, clientId }: Principal): string => {
    if (sub !== last.sub || clientId !== last.clientId) last = { sub, clientId, key: bucketKey('p', [clientId, sub]) };
    return last.key;
  };

  /** The limiter for one transport's routes; runs after the bearer check (and after the body parser, to echo ids). */
  return function forTransport(transport: McpTransportName): RequestHandler {
    // Not async: a leased token is spent without a promise (nearly every request of a busy caller).
    return (req, res, next) => {
      const principal = principalOf(req.auth);
      if (!principal) return next();
      const principalKey = principalKeyOf(principal);
      const cost = costOf(req.body);
      if (spendLeased(principalKey, cost)) return next();
      checkAndServe(req, res, next, principal, principalKey, transport, cost).catch(next);
    };
  };
}

/** Tokens a request takes: one per message of a JSON-RPC batch (each runs like a request of its own), else one. */
const costOf = (body: unknown): number => (Array.isArray(body) && body.length > 1 ? body.length : 1);

function clientIdsOf(limit: ClientFairUseLimit): readonly string[] {
  const ids = limit.clientIds as unknown;
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && id.length > 0)) throw new TypeError('fair-use client clientIds must be a list of client ids (non-empty strings)');
  return ids as string[];
}

/** Whole milliseconds per token, rounded up so the bucket never refills faster than the configured rate. */
function specOf(name: LimitScope, limit: FairUseLimit): Omit<BucketSpec, 'key'> {
  const { requestsPerMinute: rate, burst } = limit;
  if (!Number.isInteger(rate) || rate < 1 || rate > 60_000) throw new TypeError(`fair-use ${name} requestsPerMinute must be an integer from 1 to 60000, got ${rate}`);
  if (!Number.isInteger(burst) || burst < 1) throw new TypeError(`fair-use ${name} burst must be a positive integer, got ${burst}`);
  return { intervalMs: Math.ceil(60_000 / limit.requestsPerMinute), burst: limit.burst };
}

/** A readable key (operators can find a caller's row); hashed only when ids are too long for the table's key. */
function bucketKey(kind: 'p' | 'c', parts: string[]): string {
  const plain = `mcp:${kind}:${JSON.stringify(parts)}`;
  return plain.length <= MAX_KEY ? plain : `mcp:${kind}#${createHash('sha256').update(plain).digest('base64url')}`;
}

interface JsonRpcRequest {
  method: string;
  id?: string | number;
  params?: { name?: unknown };
}

/** The JSON-RPC requests (with an id) and notifications a body carries; none for GET or a body that is not JSON-RPC. */
function messagesOf(body: unknown): JsonRpcRequest[] {
  const all = Array.isArray(body) ? body : [body];
  return all.filter((m): m is JsonRpcRequest => typeof m === 'object' && m !== null && typeof (m as { method?: unknown }).method === 'string');
}

const hasId = (m: JsonRpcRequest) => typeof m.id === 'string' || typeof m.id === 'number';

/** What onLimited is told of a refused request: one event per JSON-RPC message, or one for a request that carries none. */
function eventsOf(req: Request, principal: Principal, transport: McpTransportName): Omit<LimitedEvent, 'scope' | 'retryAfterSeconds'>[] {
  const requestId = req.res?.get('X-Request-Id');
  const base = { sub: principal.sub, clientId: principal.clientId, transport, ...(requestId ? { requestId } : {}) };
  const messages = messagesOf(req.body);
  if (messages.length === 0) return [{ ...base, method: req.method }];
  return messages.map((m) => {
    const tool = m.method === 'tools/call' && typeof m.params?.name === 'string' ? m.params.name : undefined;
    return { ...base, method: m.method, ...(tool !== undefined ? { tool } : {}), ...(hasId(m) ? { jsonRpcId: m.id } : {}) };
  });
}

interface Refusal {
  scope: LimitScope;
  retryAfterSeconds: number;
  limit: FairUseLimit;
  /** Tokens the request needed (messages in its batch). */
  cost: number;
}

function refuse(req: Request, res: Response, r: Refusal): void {
  const who = r.scope === 'principal' ? 'for this user through this app' : 'for this app, all its users together';
  const batch = r.cost > 1 ? `; a batch of ${r.cost} messages counts as ${r.cost} requests` : '';
  const message = `Rate limit exceeded: at most ${r.limit.requestsPerMinute} requests a minute (bursts of ${r.limit.burst}) ${who}${batch}; retry after ${r.retryAfterSeconds} s`;
  const data = { limit: r.scope, requestsPerMinute: r.limit.requestsPerMinute, burst: r.limit.burst, retryAfterSeconds: r.retryAfterSeconds };
  res.status(429).set('Retry-After', String(r.retryAfterSeconds)).set('Cache-Control', 'no-store');
  const requests = req.method === 'POST' ? messagesOf(req.body).filter(hasId) : [];
  if (requests.length === 0) {
    res.json({ error: 'too_many_requests', error_description: message, limit: r.scope, retry_after_seconds: r.retryAfterSeconds });
    return;
  }
  const errors = requests.map((m) => ({ jsonrpc: '2.0', id: m.id, error: { code: RATE_LIMITED_CODE, message, data } }));
  res.json(Array.isArray(req.body) ? errors : errors[0]);
}

/** What the MCP transports take from this module: the limiter for their routes (absent: no limit, MCP_REQUESTS_PER_MINUTE=off). */
export interface FairUseOption {
  /** Runs after the bearer check and the body parser, before the scope check and the transport. */
  limit?: RequestHandler;
}

/** The limiter a transport runs: the given one, or one that lets every request through. */
export const limiterOf = (options: FairUseOption): RequestHandler => options.limit ?? ((_req, _res, next) => next());
