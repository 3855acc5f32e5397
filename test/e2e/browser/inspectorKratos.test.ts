import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKratos } from '../../../src/kratos/index.js';
import { type Stack, startStack } from '../stack.js';
import { INSPECTOR_VERSION, inspectorInChromium, type RunningInspector, runWhoamiInInspector } from './inspector.js';

const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));

/**
 * Issue 15 end to end in a real browser: with IDENTITY=kratos, MCP Inspector's
 * web UI in headless Debian Chromium connects to our /mcp, and the person
 * registers on our page (Kratos's registration flow, posted to the real Ory
 * Kratos), allows on our consent page, and whoami shows the Kratos identity id.
 */
describe(`MCP Inspector ${INSPECTOR_VERSION} in headless Chromium with IDENTITY=kratos`, () => {
  let stack: Stack;
  let inspector: RunningInspector;
  let browser: Browser;
  let stopBrowser: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: 'jwt', database: 'sqlite', identity: 'kratos' });
    ({ inspector, browser, stop: stopBrowser } = await inspectorInChromium(stack.mcpUrl.href));
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  afterAll(async () => {
    await stopBrowser?.();
    await stack?.stop();
  });

  it('registers through Kratos on our page, allows, and whoami shows the Kratos identity id', async (ctx) => {
    ctx.onTestFailed(() => console.error(`--- Kratos ---\n${stack.kratosLog.slice(-30).join('\n')}`));
    const email = 'inspector-kratos@example.com';
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto(inspector.url);
    await page.getByRole('switch', { name: /Connect or disconnect/ }).check({ force: true });

    await page.waitForURL((u) => u.href.startsWith(`${stack.baseUrl}/kratos/login?`));
    await page.getByRole('link', { name: 'Create an account' }).click();
    await page.waitForURL((u) => u.href.startsWith(`${stack.baseUrl}/kratos/registration?`));
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Name').fill('Inspector Kratos');
    await page.getByLabel('Password').fill('a browser made this one');
    await page.screenshot({ path: join(ARTIFACTS, 'kratos-registration.png') });
    await page.getByRole('button', { name: 'Sign up' }).click();

    await page.waitForURL((u) => u.href.startsWith(`${stack.baseUrl}/consent?`));
    expect(await page.getByText(email).first().isVisible(), 'consent names the Kratos identity').toBe(true);
    await page.getByRole('button', { name: 'Allow' }).click();

    // The identity Kratos made for that email is who the token speaks for.
    const kratos = createKratos({ publicUrl: new URL(stack.kratos!.publicUrl), adminUrl: new URL(stack.kratos!.adminUrl) });
    const sub = await identityIdOf(kratos, email);
    expect(await runWhoamiInInspector(page, inspector.url, sub, join(ARTIFACTS, 'kratos-inspector-whoami.png'))).toBeGreaterThan(0);
  });
});

async function identityIdOf(kratos: ReturnType<typeof createKratos>, email: string): Promise<string> {
  const [identity] = (await kratos.admin.listIdentities({ identifier: email })).identities;
  expect(identity, `Kratos has an identity for ${email}`).toBeDefined();
  return identity!.id;
}
