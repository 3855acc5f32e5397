import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '../../../scripts/hydra.js';
import { type Stack, startStack, type TestUser } from '../stack.js';
import { type AuthorizationLegRun, type ConformanceSuite, ensureConformanceSuite, readResults, startAuthorizationLeg } from './suite.js';

const CHROMIUM = '/usr/bin/chromium';
const CLIENT_NAME = 'MCP conformance suite';

/**
 * The official MCP conformance suite's authorization leg against the real
 * stack (Hydra + our server), with headless Chromium playing the person on
 * our sign-in and consent pages when the suite prints its authorization URL.
 * Scenarios: authorization-server-metadata-endpoint (RFC 8414 metadata, the
 * issuer compared character for character, PKCE S256, CIMD advertised) and
 * authorization-code-grant (OAuth 2.1 §4.1 with PKCE, `state`, RFC 8707
 * `resource`, RFC 9207 `iss` when present, token response headers).
 * Passing means no failure and no warning.
 */
describe('MCP conformance suite, authorization leg, against the real stack', () => {
  let stack: Stack;
  let user: TestUser;
  let browser: Browser;
  let outputDir: string;
  let suite: ConformanceSuite;
  let run: AuthorizationLegRun | undefined;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)`);
    suite = await ensureConformanceSuite((l) => process.stderr.write(`[conformance] ${l}\n`));
    stack = await startStack({ accessTokenStrategy: 'jwt', database: 'sqlite' });
    user = await stack.addUser('conformance-user@example.com', 'conformance test password');
    outputDir = await mkdtemp(join(tmpdir(), 'hydra-mcp-conformance-'));
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });

  afterAll(async () => {
    run?.kill();
    await browser?.close();
    await stack?.stop();
    if (outputDir) await rm(outputDir, { recursive: true, force: true });
  });

  it('passes both scenarios with no failure and no warning', { timeout: 180_000 }, async () => {
    // The issuer exactly as our protected resource metadata names it (RFC 9728 §2).
    const prm = (await (await fetch(new URL('/.well-known/oauth-protected-resource/mcp', stack.baseUrl))).json()) as {
      authorization_servers: string[];
    };
    const issuer = prm.authorization_servers[0]!;

    // A public PKCE client, registered the way an MCP client does (RFC 7591),
    // with the callback the suite listens on.
    const callbackPort = await freeLoopbackPort();
    const redirectUri = `http://127.0.0.1:${callbackPort}/callback`;
    const reg = await fetch(new URL('/register', stack.baseUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        client_name: CLIENT_NAME,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }),
    });
    expect(reg.status, await reg.clone().text()).toBe(201);
    const { client_id: clientId } = (await reg.json()) as { client_id: string };

    const started = Date.now();
    run = startAuthorizationLeg(suite, { issuer, clientId, resource: stack.mcpUrl.href, callbackPort, outputDir });
    let timer: NodeJS.Timeout | undefined;
    const authorizationUrl = await Promise.race([
      run.authorizationUrl,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no authorization URL in 60 s:\n${run!.output.join('\n')}`)), 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect(authorizationUrl.startsWith(`${stack.baseUrl}/authorize?`), authorizationUrl).toBe(true);

    // The person: sign in, allow.
    const page = await browser.newPage();
    await page.goto(authorizationUrl);
    await page.waitForURL((u) => u.href.startsWith(`${stack.baseUrl}/login?`));
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.href.startsWith(`${stack.baseUrl}/consent?`));
    expect(await page.getByText(CLIENT_NAME, { exact: true }).isVisible(), 'consent names the client').toBe(true);
    await page.getByRole('button', { name: 'Allow' }).click();
    await page.waitForURL((u) => u.href.startsWith(`${redirectUri}?`));

    const code = await run.exited;
    const results = await readResults(outputDir);
    const checks = results.flatMap((r) => r.checks.map((c) => ({ scenario: r.scenario, ...c })));
    const summary = [
      `conformance authorization --url ${issuer} --client-id ${clientId} --resource ${stack.mcpUrl.href} --port ${callbackPort} (${((Date.now() - started) / 1000).toFixed(1)} s, exit ${code})`,
      ...checks.map((c) => `  ${c.status.padEnd(7)} ${c.scenario} / ${c.id}${c.errorMessage ? `: ${c.errorMessage}` : ''}`),
      ...['SUCCESS', 'FAILURE', 'WARNING', 'SKIPPED'].map((s) => `  ${checks.filter((c) => c.status === s).length} ${s.toLowerCase()}`),
      // The suite's own summary (it counts passes and failures, not warnings).
      ...(run.output.includes('=== SUMMARY ===') ? run.output.slice(run.output.indexOf('=== SUMMARY ===')) : ['(the suite printed no summary)']),
    ].join('\n');
    console.log(summary);
    const detail = `${summary}\n--- suite output ---\n${run.output.join('\n')}`;

    expect(results.map((r) => r.scenario).sort(), detail).toEqual(['authorization-code-grant', 'authorization-server-metadata-endpoint']);
    expect(checks.filter((c) => c.status !== 'SUCCESS'), detail).toEqual([]);
    expect(checks.map((c) => c.id).sort(), detail).toEqual([
      'authorization-code-grant',
      'authorization-server-metadata',
      'authorization-server-metadata-cimd',
    ]);
    expect(code, detail).toBe(0);
  });
});
