import autocannon from 'autocannon';
import type { LoadSample } from './results.js';

export interface Target {
  /** The server's /mcp URL. */
  url: URL;
  token: string;
  /** Stateful servers: the session every request belongs to. */
  sessionId?: string;
}

export const headersFor = (t: Target): Record<string, string> => ({
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
  authorization: `Bearer ${t.token}`,
  ...(t.sessionId ? { 'mcp-session-id': t.sessionId, 'mcp-protocol-version': '2025-06-18' } : {}),
});

let nextId = 1;
const callWhoami = () => JSON.stringify({ jsonrpc: '2.0', id: nextId++, method: 'tools/call', params: { name: 'whoami', arguments: {} } });

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
  const res = await fetch(t.url, { method: 'POST', headers: headersFor(t), body: callWhoami() });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`whoami answered ${res.status}: ${text}`);
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
        requests: [{ method: 'POST', setupRequest: (req) => ({ ...req, body: callWhoami() }) }],
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) latencies.push(ms);
    });
  });
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return {
    rps: latencies.length / result.duration,
    p50: at(0.5),
    p99: at(0.99),
    requests: latencies.length,
    errors: result.errors + result.timeouts + result.non2xx,
  };
}
