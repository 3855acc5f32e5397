import autocannon from 'autocannon';
import type { LoadSample } from './results.js';
import { quantile } from './stats.js';

export interface Target {
  /** The server's /mcp URL. */
  url: URL;
  token: string;
  /** Stateful servers: the session every request belongs to. */
  sessionId?: string;
  /**
   * Which revision's request shape to send. '2026-07-28': no initialize, no
   * session; the revision and capabilities ride in `params._meta` and the
   * method and tool name are repeated in `Mcp-Method` / `Mcp-Name`. Default: 2025.
   */
  revision?: '2026-07-28';
  /** The tool to call (default whoami); it must answer whoami's shape. */
  tool?: string;
}

export const REVISION_2026 = '2026-07-28';

export const headersFor = (t: Target): Record<string, string> => ({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  authorization: `Bearer ${t.token}`,
  ...(t.sessionId ? { 'mcp-session-id': t.sessionId, 'mcp-protocol-version': '2025-06-18' } : {}),
  ...(t.revision === REVISION_2026 ? { 'mcp-protocol-version': REVISION_2026, 'mcp-method': 'tools/call', 'mcp-name': t.tool ?? 'whoami' } : {}),
});

let nextId = 1;
/** `tools/call whoami` in the target's revision (2026-07-28 carries its revision and capabilities in `_meta`). */
export const callWhoami = (t: Target) =>
  JSON.stringify({
    jsonrpc: '2.0',
    id: nextId++,
    method: 'tools/call',
    params:
      t.revision === REVISION_2026
        ? { name: t.tool ?? 'whoami', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': REVISION_2026, 'io.modelcontextprotocol/clientCapabilities': {} } }
        : { name: t.tool ?? 'whoami', arguments: {} },
  });

/** Open a Streamable HTTP session (initialize, then initialized) and return its id. */
export async function openSession(url: URL, token: string): Promise<{ status: number; sessionId?: string }> {
  const init = await fetch(url, {
    method: 'POST',
    headers: headersFor({ url, token }),
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1.0.0' } },
    }),
  });
  await init.arrayBuffer();
  const sessionId = init.headers.get('mcp-session-id') ?? undefined;
  if (init.status !== 200 || !sessionId) return { status: init.status };
  const done = await fetch(url, {
    method: 'POST',
    headers: headersFor({ url, token, sessionId }),
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  await done.arrayBuffer();
  if (done.status !== 202) throw new Error(`notifications/initialized answered ${done.status}`);
  return { status: 200, sessionId };
}

/**
 * One `tools/call whoami`, checked: the answer must be a tool result (JSON,
 * or one SSE message) naming `expectSub`. Run before and after each load so a
 * scenario that answers 200 with an error cannot pass as fast.
 */
export async function callOnce(t: Target, expectSub: string): Promise<void> {
  const res = await fetch(t.url, { method: 'POST', headers: headersFor(t), body: callWhoami(t) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`whoami answered ${res.status}: ${text}`);
  // A 2026-07-28 call must be answered without opening a session (it would otherwise be a 2025 path in disguise).
  if (t.revision === REVISION_2026 && res.headers.get('mcp-session-id')) throw new Error('a 2026-07-28 call was answered with a session id');
  const json = text.startsWith('{') ? text : /^data: (.*)$/m.exec(text)?.[1];
  const result = json ? (JSON.parse(json) as { result?: { content?: { text?: string }[]; isError?: boolean } }).result : undefined;
  const sub = result && !result.isError ? (JSON.parse(result.content?.[0]?.text ?? '{}') as { sub?: string }).sub : undefined;
  if (sub !== expectSub) throw new Error(`whoami did not name ${expectSub}: ${text.slice(0, 300)}`);
}

/**
 * `connections` keep-alive connections sending `tools/call whoami` for
 * `seconds`. Latency is taken per response at sub-millisecond resolution
 * (autocannon's own histogram rounds to whole milliseconds).
 */
export async function runLoad(t: Target, connections: number, seconds: number): Promise<LoadSample> {
  const latencies: number[] = [];
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: t.url.href,
        connections,
        duration: seconds,
        headers: headersFor(t),
        requests: [{ method: 'POST', setupRequest: (req) => ({ ...req, body: callWhoami(t) }) }],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) latencies.push(ms);
    });
  });
  latencies.sort((a, b) => a - b);
  const at = (q: number) => (latencies.length ? quantile(latencies, q) : Number.NaN);
  return {
    rps: latencies.length / result.duration,
    p50: at(0.5),
    p99: at(0.99),
    requests: latencies.length,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}
