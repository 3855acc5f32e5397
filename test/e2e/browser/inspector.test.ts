import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack, type TestUser } from '../stack.js';
import { INSPECTOR_VERSION, inspectorInChromium, type RunningInspector, runWhoamiInInspector } from './inspector.js';

const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));

/**
 * The flagship client in a real browser: MCP Inspector's web UI in headless
 * Debian Chromium connects to our /mcp, registers, sends the person through
 * our sign-in and consent pages, then lists tools and calls whoami.
 */
describe(`MCP Inspector ${INSPECTOR_VERSION} in headless Chromium against the real stack`, () => {
  let stack: Stack;
  let user: TestUser;
  let inspector: RunningInspector;
  let browser: Browser;
  let stopBrowser: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite' });
    user = await stack.addUser('inspector-user@example.com', 'browser test password');
    ({ inspector, browser, stop: stopBrowser } = await inspectorInChromium(stack.mcpUrl.href));
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  afterAll(async () => {
    await stopBrowser?.();
    await stack?.stop();
  });

  it('connects with OAuth (register, sign in, allow) and shows whoami with the signed-in user', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto(inspector.url);
    // Mantine's switch hides its input under a styled track; force the check.
    await page.getByRole('switch', { name: /Connect or disconnect/ }).check({ force: true });

    await page.waitForURL((u) => u.href.startsWith(`${stack.baseUrl}/login?`));
    await page.screenshot({ path: join(ARTIFACTS, 'login.png') });
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();

    await page.waitForURL((u) => u.href.startsWith(`${stack.baseUrl}/consent?`));
    expect(await page.getByText('MCP Inspector', { exact: true }).isVisible(), 'consent names the client').toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'consent.png') });
    await page.getByRole('button', { name: 'Allow' }).click();

    expect(await runWhoamiInInspector(page, inspector.url, user.sub, join(ARTIFACTS, 'inspector-whoami.png'))).toBeGreaterThan(0);
  });
});
