import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '../../../scripts/hydra.js';
import { toAuthInfo } from '../../../src/auth/principal.js';
import type { AccessTokenVerifier } from '../../../src/auth/tokenVerifier.js';
import { type RunningServer, startServer } from '../../../src/main.js';
import { type ConformanceCheck, type ConformanceSuite, ensureConformanceSuite } from './suite.js';

/**
 * The official suite's server leg, `--requirements 2025-11-25` and
 * `--requirements 2026-07-28`, against our app: the same transports, routing
 * and middleware (Host and Origin guards, bearer check, step-up), with two
 * test-only parts, because the suite has no option for a bearer token:
 * - a fixed verifier that accepts any token as one test principal with every
 *   scope (startServer's `verifier` parameter: code only, no setting can
 *   choose it, see test/app/composition.test.ts), and
 * - a loopback front that adds `Authorization: Bearer conformance` to what
 *   the suite sends and changes nothing else (Host and Origin pass through,
 *   so the DNS-rebinding scenario still reaches our guard).
 *
 * Scenarios are split in two. APPLICABLE ones exercise what a server with our
 * tools has (lifecycle, sessions, stateless 2026 requests, header validation,
 * DNS rebinding, ping, logging, tools/list…): every check passes, except the
 * few listed in FIXTURE_CHECKS, which need a diagnostic tool the suite
 * expects its own fixture server to have. The others need the suite's fixture
 * tools, prompts or resources (test_simple_text, greet, slow_compute…), or the
 * tasks extension, which this server does not implement: recorded, not
 * scored. A scenario the suite adds later fails the test until it is sorted.
 */

const APPLICABLE: Record<string, readonly string[]> = {
  '2025-11-25': [
    'server-initialize',
    'server-session-lifecycle',
    'server-sse-multiple-streams',
    'server-sse-polling',
    'logging-set-level',
    'ping',
    'tools-list',
    'dns-rebinding-protection',
  ],
  '2026-07-28': [
    'server-stateless',
    'server-sse-multiple-streams',
    'tools-list',
    'dns-rebinding-protection',
    'http-header-validation',
    'caching',
    'sep-2164-resource-not-found',
    'input-required-result-missing-input-response',
    'input-required-result-unsupported-methods',
    'input-required-result-ignore-extra-params',
    'input-required-result-validate-input',
  ],
};

/** Checks inside applicable scenarios that need the suite's fixtures (the reason is in the check's own message). */
const FIXTURE_CHECKS: Record<string, readonly string[]> = {
  // Diagnostic tools test_missing_capability, test_streaming_elicitation, test_logging_tool.
  'server-stateless': [
    'sep-2575-server-rejects-undeclared-capability',
    'sep-2575-missing-capability-http-400',
    'sep-2575-http-server-no-independent-requests-on-stream',
    'sep-2575-server-no-log-without-loglevel',
  ],
  // We serve no prompts nor resources: those lists answer -32601 Method not found.
  caching: ['sep-2549-prompts-list-caching-hints', 'sep-2549-resources-list-caching-hints', 'sep-2549-resources-templates-list-caching-hints'],
};

/** Scenarios that need the suite's fixture server (tools test_*, prompts, resources, sampling, elicitation) or the tasks extension. */
const NEEDS_FIXTURES: Record<string, readonly string[]> = {
  '2025-11-25': [
    'completion-complete', 'elicitation-sep1034-defaults', 'elicitation-sep1330-enums', 'json-schema-2020-12',
    'prompts-get-embedded-resource', 'prompts-get-simple', 'prompts-get-with-args', 'prompts-get-with-image', 'prompts-list',
    'resources-list', 'resources-read-binary', 'resources-read-text', 'resources-subscribe', 'resources-templates-read', 'resources-unsubscribe',
    'tools-call-audio', 'tools-call-elicitation', 'tools-call-embedded-resource', 'tools-call-error', 'tools-call-image',
    'tools-call-mixed-content', 'tools-call-sampling', 'tools-call-simple-text', 'tools-call-with-logging', 'tools-call-with-progress',
  ],
  '2026-07-28': [
    'completion-complete', 'http-custom-header-server-validation', 'json-schema-2020-12',
    'input-required-result-basic-elicitation', 'input-required-result-basic-list-roots', 'input-required-result-basic-sampling',
    'input-required-result-capability-check', 'input-required-result-multi-round', 'input-required-result-multiple-input-requests',
    'input-required-result-non-tool-request', 'input-required-result-request-state', 'input-required-result-result-type',
    'input-required-result-tampered-state',
    'prompts-get-embedded-resource', 'prompts-get-simple', 'prompts-get-with-args', 'prompts-get-with-image', 'prompts-list',
    'resources-list', 'resources-read-binary', 'resources-read-text', 'resources-templates-read',
    'tasks-capability-negotiation', 'tasks-dispatch-and-envelope', 'tasks-lifecycle', 'tasks-mrtr-composition', 'tasks-mrtr-input',
    'tasks-request-headers', 'tasks-request-state-removal', 'tasks-required-task-error', 'tasks-status-notifications', 'tasks-wire-fields',
    'tools-call-audio', 'tools-call-embedded-resource', 'tools-call-error', 'tools-call-image', 'tools-call-mixed-content',
    'tools-call-simple-text', 'tools-call-with-progress',
  ],
};

const anyToken: AccessTokenVerifier = {
  verifyAccessToken: async (token) =>
    toAuthInfo({ sub: 'conformance', clientId: 'conformance', scopes: ['notes:read', 'notes:write'], expiresAt: Math.floor(Date.now() / 1000) + 3600 }, token),
  isActiveNow: async () => true,
};

/** Forward everything to `target`, adding only a bearer token. */
function tokenFront(target: number): Promise<http.Server> {
  const front = http.createServer((req, res) => {
    const up = http.request(
      { host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: { ...req.headers, authorization: 'Bearer conformance' } },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    res.on('close', () => up.destroy());
    req.pipe(up);
  });
  return new Promise((resolve) => front.listen(0, '127.0.0.1', () => resolve(front)));
}

function runServerLeg(suite: ConformanceSuite, url: string, revision: string, outputDir: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(suite.node, [suite.cli, 'server', '--url', url, '--requirements', revision, '--output-dir', outputDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, output })));
}

async function scenarios(outputDir: string): Promise<Map<string, ConformanceCheck[]>> {
  const byName = new Map<string, ConformanceCheck[]>();
  for (const e of await readdir(outputDir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const name = /^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(e.name)?.[1] ?? e.name;
    byName.set(name, JSON.parse(await readFile(join(outputDir, e.name, 'checks.json'), 'utf8')) as ConformanceCheck[]);
  }
  return byName;
}

describe('MCP conformance suite, server leg, both protocol eras on /mcp', () => {
  let suite: ConformanceSuite;
  let server: RunningServer;
  let front: http.Server;
  let dir: string;
  let url: string;

  beforeAll(async () => {
    suite = await ensureConformanceSuite((l) => process.stderr.write(`[conformance] ${l}\n`));
    dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-conformance-server-'));
    const port = await freeLoopbackPort();
    front = await tokenFront(port);
    const frontPort = (front.address() as AddressInfo).port;
    server = await startServer(
      {
        HOST: '127.0.0.1',
        PORT: String(port),
        HYDRA_PUBLIC_URL: 'http://127.0.0.1:9',
        HYDRA_ADMIN_URL: 'http://127.0.0.1:9',
        DATABASE_PATH: join(dir, 'db.sqlite'),
        SESSION_SECRET: 's'.repeat(40),
        LOG_LEVEL: 'silent',
        METRICS_PORT: 'off',
        // The suite addresses the front; its port is not ours.
        ALLOWED_HOSTS: `127.0.0.1:${frontPort},localhost:${frontPort}`,
        // Every scenario runs as one principal, hundreds of requests a minute: fair use
        // (tested in test/limits/ and test/e2e/fairUse.test.ts) would refuse the suite itself.
        MCP_REQUESTS_PER_MINUTE: 'off',
      },
      { verifier: () => anyToken },
    );
    url = `http://127.0.0.1:${frontPort}/mcp`;
  }, 660_000);
  afterAll(async () => {
    await server?.stop();
    await new Promise((r) => front?.close(r));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.each(['2025-11-25', '2026-07-28'])('--requirements %s: every applicable scenario passes', async (revision) => {
    const out = join(dir, revision);
    const { output } = await runServerLeg(suite, url, revision, out);
    const results = await scenarios(out);
    expect(results.size, output).toBeGreaterThan(0);
    // Every scenario the suite ran is sorted into applicable or needs-fixtures.
    expect([...results.keys()].sort()).toEqual([...APPLICABLE[revision]!, ...NEEDS_FIXTURES[revision]!].sort());
    const failures: string[] = [];
    for (const name of APPLICABLE[revision]!) {
      const checks = results.get(name)!;
      expect(checks.length, `${name} ran no checks`).toBeGreaterThan(0);
      for (const c of checks) {
        if (c.status !== 'FAILURE' || FIXTURE_CHECKS[name]?.includes(c.id)) continue;
        failures.push(`${name} / ${c.id}: ${c.errorMessage ?? JSON.stringify(c)}`);
      }
    }
    expect(failures).toEqual([]);
    const passed = [...results.values()].flat().filter((c) => c.status === 'SUCCESS').length;
    console.log(`conformance server leg ${revision}: ${APPLICABLE[revision]!.length} applicable scenarios pass (${passed} checks succeeded in all); ${NEEDS_FIXTURES[revision]!.length} need the suite's fixtures`);
  }, 600_000);
});
