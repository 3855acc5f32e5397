import { randomBytes } from 'node:crypto';
import {
  type CallToolResult,
  CLIENT_CAPABILITIES_META_KEY,
  type ClientCapabilities,
  createRequestStateCodec,
  inputRequired,
  type InputRequiredResult,
  inputResponse,
  type RequestStateCodec,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { type Principal, principalOf } from '../auth/principal.js';
import type { ConnectLinks } from '../connections/connectLink.js';
import type { ConnectionRequiredError } from '../connections/credentials.js';
import type { Logger } from '../log/logger.js';

/** What the MCP layer needs from connected accounts (src/connections), wired in the composition root. */
export interface ConnectionPromptOptions {
  links: ConnectLinks;
  isConnected(sub: string, provider: string): Promise<boolean>;
  /** The provider's name for people ("GitHub"). */
  displayName(provider: string): string;
  /** Seals the 2026-07-28 requestState (HMAC, bound to the caller); from `requestStateCodec`. */
  codec: RequestStateCodec<ConnectState>;
  /**
   * Record a requestState's nonce as used, in the database every replica
   * shares (src/store/singleUseIds.ts); false when it was used before.
   */
  useOnce(id: string, expiresAt: number): Promise<boolean>;
  /** This process's bound on each person's calls waiting for a connection; from `waiterSlots`. */
  waiters: WaiterSlots;
  /** Longest wait for the person to finish connecting, in ms. */
  waitMs: number;
  /** How often the wait looks at the store (default 1 s): the callback may land on another replica. */
  pollMs?: number;
  log: Logger;
}

/** The 2026-07-28 round trip's state: which provider the elicitation was for, and what makes it single-use. */
export interface ConnectState {
  provider: string;
  /** Random; recorded on the first retry that carries it, so a replay is refused. */
  nonce: string;
  /** When the requestState expires (epoch ms), so the record of its use can go then. */
  expiresAt: number;
}

/** How many of a person's calls may wait for a connection at once, in one process. */
export const WAITERS_PER_PERSON = 4;

/** Each waiter holds a request open and reads the store once a second: a person may hold only a few. */
export interface WaiterSlots {
  readonly perPerson: number;
  /** A slot for `sub`, and the function that gives it back; undefined when all theirs are taken. */
  take(sub: string): (() => void) | undefined;
}

export function waiterSlots(perPerson = WAITERS_PER_PERSON): WaiterSlots {
  if (!Number.isSafeInteger(perPerson) || perPerson < 1) throw new TypeError('waiterSlots: perPerson must be a positive integer');
  const held = new Map<string, number>();
  return {
    perPerson,
    take(sub) {
      const n = held.get(sub) ?? 0;
      if (n >= perPerson) return undefined;
      held.set(sub, n + 1);
      let given = false;
      return () => {
        if (given) return;
        given = true;
        const left = (held.get(sub) ?? 1) - 1;
        if (left > 0) held.set(sub, left);
        else held.delete(sub);
      };
    },
  };
}

/** How long a requestState lives: the wait, plus ten minutes for the person to open the link and connect. */
const stateTtlSeconds = (waitMs: number) => Math.ceil(waitMs / 1000) + 600;

/** The key of our URL elicitation in `inputRequests` / `inputResponses`. */
const INPUT_KEY = 'connect';

/**
 * The requestState codec (SDK's HMAC helper): a state minted for one person
 * and client is refused for any other, and expires with the wait.
 */
export function requestStateCodec(secret: string, waitMs: number): RequestStateCodec<ConnectState> {
  return createRequestStateCodec<ConnectState>({
    key: `${secret}\0mcp-request-state`,
    ttlSeconds: stateTtlSeconds(waitMs),
    bind: (ctx) => {
      const p = principalOf(ctx.http?.authInfo);
      return `${ctx.mcpReq.method}\0${p?.clientId ?? ''}\0${p?.sub ?? ''}`;
    },
  });
}

export type PromptOutcome = { connected: true } | { connected: false; result: CallToolResult | InputRequiredResult };

interface Call {
  toolName: string;
  principal: Principal;
  extra: ServerContext;
  /** The 2025 session's client capabilities (from initialize); undefined without a session. */
  sessionCapabilities: ClientCapabilities | undefined;
}

const text = (t: string): CallToolResult => ({ isError: true, content: [{ type: 'text', text: t }] });
const is2026 = (extra: ServerContext) => extra.mcpReq.envelope !== undefined;
const wantsUrlElicitation = (caps: ClientCapabilities | undefined) => Boolean((caps as { elicitation?: { url?: unknown } } | undefined)?.elicitation?.url);

/**
 * A tool needs a connection the person has not made. Ask the client to send
 * them to the connect page, in the form their era and capabilities allow:
 *
 * - 2026-07-28, client with URL elicitation: an `input_required` result with a
 *   URL elicitation (multi-round trip); the retry resumes in `resume`.
 * - 2025 session, client with URL elicitation: `elicitation/create` (mode url);
 *   after "accept" the call waits for the connection, sends
 *   `notifications/elicitation/complete` and runs the tool again.
 * - Anyone else (no URL elicitation, or a 2025 request without a session,
 *   whose answer could not reach this process): a tool error carrying the link
 *   and what to do.
 */
export async function promptToConnect(e: ConnectionRequiredError, call: Call, o: ConnectionPromptOptions): Promise<PromptOutcome> {
  const { principal, extra, toolName } = call;
  const name = o.displayName(e.provider);
  if (principal.kind === 'machine') {
    return { connected: false, result: text(`${toolName} needs a connected ${name} account, which only a person can connect; a machine client cannot use it.`) };
  }
  const { elicitationId, url } = o.links.mint(principal.sub, e.provider);
  const why = e.reason === 'missing' ? `needs access to your ${name} account` : `lost access to your ${name} account (the grant was revoked or expired)`;
  const message = `${toolName} ${why}. Open the link to connect it; the call continues once you have.`;
  const fallback = text(`connection_required: ${toolName} ${why}. Open ${url} in your browser, connect ${name}, then call ${toolName} again.`);

  if (is2026(extra)) {
    const caps = (extra.mcpReq.envelope as Record<string, unknown> | undefined)?.[CLIENT_CAPABILITIES_META_KEY] as ClientCapabilities | undefined;
    if (!wantsUrlElicitation(caps)) return { connected: false, result: fallback };
    const nonce = randomBytes(16).toString('base64url');
    const requestState = await o.codec.mint({ provider: e.provider, nonce, expiresAt: Date.now() + stateTtlSeconds(o.waitMs) * 1000 }, extra);
    return { connected: false, result: inputRequired({ inputRequests: { [INPUT_KEY]: inputRequired.elicitUrl({ message, url }) }, requestState }) };
  }
  if (!wantsUrlElicitation(call.sessionCapabilities)) return { connected: false, result: fallback };
  // The slot covers the elicitation too: the call is held open while the person decides.
  const release = o.waiters.take(principal.sub);
  if (!release) return { connected: false, result: tooManyWaiting(toolName, name, o) };
  try {
    const answer = await extra.mcpReq.elicitInput({ mode: 'url', message, url, elicitationId });
    if (answer.action !== 'accept') return { connected: false, result: text(`${toolName} was not run: connecting ${name} was ${answer.action === 'decline' ? 'declined' : 'cancelled'}.`) };
    if (!(await waitForConnection(principal.sub, e.provider, extra, o))) {
      return { connected: false, result: text(`${toolName} was not run: ${name} was not connected in time. Open ${url} to connect it, then call ${toolName} again.`) };
    }
  } finally {
    release();
  }
  await extra.mcpReq.notify({ method: 'notifications/elicitation/complete', params: { elicitationId } }).catch(() => undefined);
  return { connected: true };
}

const tooManyWaiting = (toolName: string, name: string, o: ConnectionPromptOptions) =>
  text(`${toolName} was not run: ${o.waiters.perPerson} calls are already waiting for you to connect. Connect ${name} with the link you were given, then call ${toolName} again.`);

/**
 * A 2026-07-28 retry that answers our URL elicitation: wait (bounded) for the
 * connection, then let the tool run. Undefined when the request is not such a
 * retry. The state is the SDK-verified requestState (HMAC, bound to caller and
 * tool); it is single-use, so one state cannot start a waiter per replay.
 */
export async function resumeAfterConnect(call: Call, o: ConnectionPromptOptions): Promise<PromptOutcome | undefined> {
  const { extra, principal, toolName } = call;
  if (!is2026(extra)) return undefined;
  const state = extra.mcpReq.requestState<ConnectState>();
  if (!state || typeof state !== 'object' || typeof state.provider !== 'string' || typeof state.nonce !== 'string' || !Number.isSafeInteger(state.expiresAt)) return undefined;
  const name = o.displayName(state.provider);
  const answer = inputResponse(extra.mcpReq.inputResponses, INPUT_KEY);
  if (answer.kind !== 'elicit') return undefined;
  if (!(await o.useOnce(`request-state:${state.nonce}`, state.expiresAt))) {
    return { connected: false, result: text(`${toolName} was not run: this answer to the request to connect ${name} was already used. Call ${toolName} again.`) };
  }
  if (answer.action !== 'accept') return { connected: false, result: text(`${toolName} was not run: connecting ${name} was ${answer.action === 'decline' ? 'declined' : 'cancelled'}.`) };
  const release = o.waiters.take(principal.sub);
  if (!release) return { connected: false, result: tooManyWaiting(toolName, name, o) };
  try {
    if (await waitForConnection(principal.sub, state.provider, extra, o)) return { connected: true };
  } finally {
    release();
  }
  const url = o.links.mint(principal.sub, state.provider).url;
  return { connected: false, result: text(`${toolName} was not run: ${name} was not connected in time. Open ${url} to connect it, then call ${toolName} again.`) };
}

/** Poll until the person has connected, the wait runs out or the call is cancelled; progress keeps patient clients waiting. */
async function waitForConnection(sub: string, provider: string, extra: ServerContext, o: ConnectionPromptOptions): Promise<boolean> {
  const deadline = Date.now() + o.waitMs;
  const progressToken = extra.mcpReq._meta?.progressToken;
  let ticks = 0;
  while (!extra.mcpReq.signal.aborted) {
    if (await o.isConnected(sub, provider)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, o.pollMs ?? 1000));
    ticks++;
    if (progressToken !== undefined && ticks % 10 === 0) {
      await extra.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress: ticks, message: `waiting for ${o.displayName(provider)} to be connected` } }).catch(() => undefined);
    }
  }
  return false;
}
