import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack, type TestUser } from '../stack.js';
import { startUpstream, type Upstream } from '../upstream.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));

/**
 * Connected services on /account in real headless Chromium (issue 14): a
 * person connects a second real Ory Hydra (the provider, with its own login
 * and consent pages) and disconnects it again. The screenshots are the ones
 * in the README (docs/screenshots/account-connect*.png are copies).
 */
describe('connected services on /account in headless Chromium', () => {
  let upstream: Upstream;
  let stack: Stack;
  let user: TestUser;
  let browser: Browser;

  beforeAll(async () => {
    upstream = await startUpstream();
    stack = await startStack({
      accessTokenStrategy: 'opaque',
      database: 'sqlite',
      appEnv: async (base, dir) => {
        const c = await upstream.registerClient({ redirectUris: [`${base}/account/connections/upstream/callback`], scope: 'offline_access profile' });
        const file = join(dir, 'connections.json');
        await writeFile(file, JSON.stringify({ providers: { upstream: { displayName: 'Upstream', issuer: upstream.issuer, clientId: c.clientId, clientSecret: c.clientSecret, scopes: ['offline_access', 'profile'] } } }));
        return { CONNECTIONS_FILE: file, CONNECTION_KEYS: `k1:${randomBytes(32).toString('base64url')}` };
      },
    });
    user = await stack.addUser('connect-user@example.com', 'browser connect password');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    await upstream?.stop();
  });

  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `account-${name}.png`), fullPage: true });
  const section = (page: Page) => page.locator('h2:has-text("Connected services") + p + ul').innerText();

  it('connects through the provider\'s own sign-in and consent, shows it on /account, and disconnects', { timeout: 120_000 }, async () => {
    const page = await browser.newPage();
    await page.goto(`${stack.baseUrl}/account`);
    await page.getByLabel('Email').fill(user.email);
    await page.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${stack.baseUrl}/account`);
    expect(await section(page)).toMatch(/Upstream\s+not connected/);

    await page.getByRole('link', { name: 'Connect Upstream' }).click();
    await expect(page.getByRole('heading', { name: 'Connect Upstream' }).isVisible()).resolves.toBe(true);
    await shot(page, 'connect-confirm');
    await page.getByRole('button', { name: 'Connect Upstream' }).click();

    // The provider's own pages (the second Hydra's login and consent app).
    await page.waitForURL((u) => u.href.startsWith(upstream.appUrl));
    await page.getByLabel('Username').fill('connect-user-upstream');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('button', { name: 'Allow' }).click();

    await page.waitForURL((u) => u.href.startsWith(`${stack.baseUrl}/account/connections/upstream/callback`));
    expect(await page.getByRole('status').innerText()).toContain('Your Upstream account is connected');
    await shot(page, 'connect-done');

    await page.goto(`${stack.baseUrl}/account`);
    expect(await section(page)).toMatch(/Upstream\s+connected · since \d{4}-\d{2}-\d{2}/);
    await shot(page, 'connections');

    await page.getByRole('button', { name: 'Disconnect' }).click();
    await page.waitForURL(`${stack.baseUrl}/account?done=disconnected`);
    expect(await page.getByRole('status').innerText()).toContain('Disconnected');
    expect(await section(page)).toMatch(/Upstream\s+not connected/);
    await page.close();
  });
});
