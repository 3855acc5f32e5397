// The MCP side runs on the SDK's v2 line (@modelcontextprotocol/server): one
// factory serves 2026-07-28 per request and 2025-era sessions (see streamableHttp.ts).
import { type CallToolResult, type ClientCapabilities, type InputRequiredResult, McpServer, type ServerContext } from '@modelcontextprotocol/server';
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/server/validators/ajv';
import { z } from 'zod';
import { type Principal, principalOf } from '../auth/principal.js';
import type { Logger } from '../log/logger.js';
import { type Db, sqliteHandleOf } from '../store/database.js';
import { scopedStoreFor } from '../store/scopedStore.js';
import { traceToolCall } from '../tracing/mcpSpans.js';
import { traceScopedStore } from '../tracing/storeSpans.js';
import { type ToolContext, type ToolDefinition, ToolError } from '../tools/contract.js';
import { machineRefusal, mayCall } from './stepUp.js';
import { ConnectionRequiredError, type CredentialService, ProviderUnavailableError } from '../connections/credentials.js';
import { type ConnectionPromptOptions, promptToConnect, resumeAfterConnect } from './connectionPrompt.js';
import type { CursorKey } from '../tools/cursor.js';
import { type CallContext, callContextOf, noteBegun } from './callContext.js';

export interface McpServerOptions {
  tools: readonly ToolDefinition[];
  /** Told every call's outcome (metrics; the audit trail, with who called and how long it took). */
  onToolCall?: (tool: string, outcome: 'ok' | 'error' | 'insufficient_scope' | 'revoked', call?: { principal: Principal; durationMs: number; context?: CallContext }) => void;
  /** Asks Hydra, uncached, whether a token is active (tools with onlineCheck). */
  isActiveNow?: (token: string) => Promise<boolean>;
  db: Db;
  /** Signs the page cursors tools hand out (from the composition root; tools never see it). */
  cursorKey: CursorKey;
  log: Logger;
  name: string;
  version: string;
  /** Connected accounts: tools' `ctx.credentials` (absent: no provider configured). */
  credentials?: CredentialService;
  /** How a missing connection is asked for (URL elicitation); with `credentials`. */
  connectionPrompt?: ConnectionPromptOptions;
  /** Counts each call as work in flight until it has ended, on every transport (a graceful stop waits for it before the database closes). */
  track?: <T>(call: Promise<T>) => Promise<T>;
}

// The SDK builds a fresh Ajv per server unless given one. Stateless mode makes
// a server per request, and building Ajv was the largest single cost there
// (CPU profile of `npm run bench`); one shared instance serves every server.
const sharedValidator = new AjvJsonSchemaValidator();

// Likewise the zod objects: zod compiles a parser on a schema's first use, so a
// schema built per server was compiled again on every stateless request.
const schemas = new WeakMap<ToolDefinition, { input: z.ZodObject; output?: z.ZodObject }>();
const schemasOf = (tool: ToolDefinition) => {
  let s = schemas.get(tool);
  if (!s) {
    s = { input: z.object(tool.input), output: tool.output ? z.object(tool.output) : undefined };
    schemas.set(tool, s);
  }
  return s;
};

/** Build the MCP server of one session (or, stateless, one request) from the tool registry. */
export function createMcpServer(options: McpServerOptions): McpServer {
  const server = new McpServer(
    { name: options.name, version: options.version },
    {
      capabilities: { tools: {}, logging: {} },
      jsonSchemaValidator: sharedValidator,
      // 2026-07-28 round trips echo requestState through the client: verified (HMAC, bound to the caller) before any handler.
      ...(options.connectionPrompt ? { requestState: { verify: options.connectionPrompt.codec.verify } } : {}),
    },
  );
  const sessionCapabilities = () => server.server.getClientCapabilities();
  for (const tool of options.tools) {
    server.registerTool(
      tool.name,
      {
        title: tool.title,
        description: tool.description,
        // The contract keeps zod shapes (unchanged for tool authors); v2 takes schemas.
        inputSchema: schemasOf(tool).input,
        outputSchema: schemasOf(tool).output,
        annotations: { title: tool.title, ...tool.annotations },
      },
      ((input: Record<string, unknown>, extra: Extra) => {
        const call = traceToolCall(tool.name, () => runTool(tool, input, extra, options, sessionCapabilities()));
        return options.track ? options.track(call) : call;
      }) as never,
    );
  }
  return server;
}

type Extra = ServerContext;

const errorResult = (text: string): CallToolResult => ({ isError: true, content: [{ type: 'text', text }] });

/**
 * Run one call: scopes checked against the caller's token, the store scoped
 * to the token's `sub`, and failures turned into safe tool errors (the full
 * error goes to the log only).
 */
async function runTool(
  tool: ToolDefinition,
  input: Record<string, unknown>,
  extra: Extra,
  { db, cursorKey, log, isActiveNow, onToolCall, credentials, connectionPrompt }: McpServerOptions,
  sessionCapabilities: ClientCapabilities | undefined,
): Promise<CallToolResult | InputRequiredResult> {
  const startedAt = performance.now();
  const authInfo = extra.http?.authInfo;
  // Past the SDK's input check: the HTTP layer's audit guard counts on hearing it.
  noteBegun(authInfo, tool.name);
  const context = callContextOf(authInfo);
  const principal = principalOf(authInfo);
  if (!principal) return errorResult('unauthorized: this call carries no verified token');
  const report = (outcome: 'ok' | 'error' | 'insufficient_scope' | 'revoked') =>
    onToolCall?.(tool.name, outcome, { principal, durationMs: performance.now() - startedAt, ...(context ? { context } : {}) });
  // Defence in depth: the HTTP layer answers 403 first (src/mcp/stepUp.ts).
  if (!mayCall(tool, principal.kind)) return errorResult(machineRefusal(tool.name));
  const missing = tool.scopes.filter((s) => !principal.scopes.includes(s));
  if (missing.length) {
    report('insufficient_scope');
    // Names every scope the tool needs, so a client can step up in one go.
    return errorResult(
      `insufficient_scope: ${tool.name} needs scope ${tool.scopes.join(' ')}; the token is missing ${missing.join(' ')}`,
    );
  }
  if (tool.onlineCheck && isActiveNow && !(await isActiveNow(authInfo!.token))) {
    report('revoked');
    return errorResult('invalid_token: the access token has been revoked or has expired; sign in again');
  }
  const toolLog = log.child({ tool: tool.name, sub: principal.sub, client_id: principal.clientId });
  // Both eras carry progress the same way: the request's `_meta.progressToken`
  // and `notifications/progress` on that request's response stream.
  const progressToken = extra.mcpReq._meta?.progressToken;
  const ctx: ToolContext<string> = {
    principal,
    store: traceScopedStore(scopedStoreFor(db, principal.sub), sqliteHandleOf(db) ? 'sqlite' : 'postgresql'),
    cursors: cursorKey.cursorsFor(principal.sub, tool.name),
    log: toolLog,
    // 2025: `notifications/cancelled`; 2026-07-28: the client closes the
    // request's response stream. The SDK turns both into this signal.
    signal: extra.mcpReq.signal,
    progress: async (progress, total, message) => {
      if (progressToken === undefined) return;
      await extra.mcpReq.notify({
        method: 'notifications/progress',
        params: { progressToken, progress, total, message },
      });
    },
    credentials: credentials?.forTool(principal.sub, tool.credentials ?? [], context?.requestId) ?? {},
  };
  const call = { toolName: tool.name, principal, extra, sessionCapabilities };
  try {
    let value: unknown;
    const resumed = connectionPrompt && tool.credentials?.length ? await resumeAfterConnect(call, connectionPrompt) : undefined;
    if (resumed && !resumed.connected) return resumed.result;
    try {
      value = await tool.handler(input as never, ctx);
    } catch (e) {
      if (!(e instanceof ConnectionRequiredError) || !connectionPrompt) throw e;
      const outcome = await promptToConnect(e, call, connectionPrompt);
      if (!outcome.connected) {
        report('error');
        return outcome.result;
      }
      // Connected while we waited: the call runs again, once.
      value = await tool.handler(input as never, ctx);
    }
    report('ok');
    const text = JSON.stringify(value ?? null);
    // With an output schema the value is also structured content (the SDK validates it).
    return tool.output ? { content: [{ type: 'text', text }], structuredContent: value as Record<string, unknown> } : { content: [{ type: 'text', text }] };
  } catch (e) {
    report('error');
    if (e instanceof ToolError) return errorResult(e.message);
    if (e instanceof ProviderUnavailableError) return errorResult(`${tool.name} failed: ${e.message}`);
    if (e instanceof ConnectionRequiredError) return errorResult(`${tool.name} failed: ${e.message}; connect it on your account page`);
    toolLog.error('tool failed', { error: e });
    return errorResult(`${tool.name} failed; the error was logged`);
  }
}
