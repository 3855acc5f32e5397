import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.js';
import { openDatabase } from '../../../src/store/database.js';
import { call, connectAs } from '../flow.js';
import { runUserCli, type Stack, startStack, type TestUser } from '../stack.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));
const NEW_PASSWORD = 'a brand new passphrase';

/** What has the keyboard focus: an input's id, else a button's or link's text. */
const focused = (page: Page) =>
  page.evaluate(() => {
    const e = document.activeElement as HTMLElement | null;
    if (!e || e === document.body) return 'BODY';
    return e.id || e.textContent?.trim() || e.tagName;
  });

/** Press Tab until `target` has the focus (at most 25 times); returns every stop on the way. */
async function tabTo(page: Page, target: string): Promise<string[]> {
  const stops: string[] = [];
  for (let i = 0; i < 25; i++) {
    await page.keyboard.press('Tab');
    stops.push(await focused(page));
    if (stops.at(-1) === target) return stops;
  }
  throw new Error(`Tab never reached "${target}"; stops: ${stops.join(' → ')}`);
}

/** The tab stops of the whole page, from the top, once round. */
async function tabOrder(page: Page): Promise<string[]> {
  // A click on the empty top corner moves the sequential focus starting point to the top.
  await page.mouse.click(1, 1);
  const stops: string[] = [];
  for (let i = 0; i < 25; i++) {
    await page.keyboard.press('Tab');
    const stop = await focused(page);
    if (stop === 'BODY' || stops.includes(stop)) break;
    stops.push(stop);
  }
  return stops;
}

/**
 * Name, description and invalid state of an element as Chromium's
 * accessibility tree gives them to a screen reader (CDP Accessibility domain).
 */
async function accessible(page: Page, selector: string) {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { result } = await cdp.send('Runtime.evaluate', { expression: `document.querySelector(${JSON.stringify(selector)})` });
    const { nodes } = await cdp.send('Accessibility.getPartialAXTree', { objectId: result.objectId!, fetchRelatives: false });
    const node = nodes.find((n) => !n.ignored)!;
    const invalid = node.properties?.find((p) => p.name === 'invalid')?.value.value;
    return { role: node.role?.value, name: node.name?.value, description: node.description?.value ?? '', invalid: invalid ?? 'false' };
  } finally {
    await cdp.detach();
  }
}

/**
 * /account in real headless Chromium against the real stack (Ory Hydra, our
 * server, an MCP client holding a token): a person signs in, changes their
 * password, downloads their data and deletes their account, by keyboard
 * alone, with the errors on the way read from the accessibility tree.
 */
describe('/account self-service in headless Chromium against the real stack', () => {
  let stack: Stack;
  let user: TestUser;
  let mcp: Client;
  let browser: Browser;
  const titles = ['shopping list', 'ideas <b>bold</b> & "quoted"'];

  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite' });
    user = await stack.addUser('account-user@example.com', 'browser test password');
    mcp = (await connectAs(stack, user)).client;
    for (const title of titles) expect((await call(mcp, 'notes_add', { title, body: `body of ${title}` })).isError).toBe(false);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    mkdirSync(ARTIFACTS, { recursive: true });
  });

  afterAll(async () => {
    await mcp?.close().catch(() => {});
    await browser?.close();
    await stack?.stop();
  });

  const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `account-${name}.png`), fullPage: true });

  it('signs in, changes the password, downloads the data and deletes the account, by keyboard', { timeout: 180_000 }, async () => {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 900, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${stack.baseUrl}/account`);

    // Sign in: fields in reading order, Enter submits.
    expect(await tabOrder(page)).toEqual(['email', 'password', 'Sign in']);
    await tabTo(page, 'email');
    await page.keyboard.type(user.email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(user.password);
    await page.keyboard.press('Enter');
    await page.getByText(`Signed in as ${user.email}.`).waitFor();
    expect(await page.getByRole('heading', { level: 2 }).allTextContents()).toEqual(['Apps with access', 'Sign-in and password', 'Your data', 'Delete account']);
    expect(await tabOrder(page)).toEqual(['Remove access', 'See what apps did with your account', 'Change password', 'Sign out everywhere', 'Download my data', 'Delete my account']);
    await shot(page, 'page');

    // Change password: a wrong current password first.
    await tabTo(page, 'Change password');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${stack.baseUrl}/account/password`);
    expect(await focused(page), 'the first field has the focus').toBe('current-password');
    expect(await tabOrder(page)).toEqual(['your account page', 'current-password', 'new-password', 'repeat-password', 'Change password', 'Back to your account']);
    expect(await accessible(page, '#new-password')).toMatchObject({ name: 'New password', description: expect.stringMatching(/^At least 8 characters/) });
    await page.focus('#current-password');
    await page.keyboard.type('not my password');
    await page.keyboard.press('Tab');
    await page.keyboard.type(NEW_PASSWORD);
    await page.keyboard.press('Tab');
    await page.keyboard.type(NEW_PASSWORD);
    await page.keyboard.press('Enter');
    await page.locator('#current-password-error').waitFor();
    expect(await page.title()).toMatch(/^Error: Change password/);
    expect(await focused(page), 'the field in error has the focus').toBe('current-password');
    expect(await accessible(page, '#current-password')).toEqual({ role: 'textbox', name: 'Current password', description: 'That is not your current password.', invalid: 'true' });
    await shot(page, 'password-error');

    await page.keyboard.type(user.password);
    await page.keyboard.press('Tab');
    await page.keyboard.type(NEW_PASSWORD);
    await page.keyboard.press('Tab');
    await page.keyboard.type(NEW_PASSWORD);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${stack.baseUrl}/account?done=password`);
    expect(await page.getByRole('status').textContent()).toBe('Password changed. Every other sign-in has ended.');
    await shot(page, 'password-changed');

    // Another browser: the old password is refused, the new one works.
    const other = await (await browser.newContext()).newPage();
    for (const [password, expected] of [[user.password, 'Wrong email or password.'], [NEW_PASSWORD, `Signed in as ${user.email}.`]] as const) {
      await other.goto(`${stack.baseUrl}/account`);
      await other.getByLabel('Email').fill(user.email);
      await other.getByLabel('Password').fill(password);
      await other.getByRole('button', { name: 'Sign in' }).click();
      await other.getByText(expected).waitFor();
    }
    await other.context().close();

    // Download my data: one JSON file, the same document the CLI prints.
    await tabTo(page, 'Download my data');
    const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
    expect(download.suggestedFilename()).toMatch(/^hydra-mcp-data-\d{4}-\d\d-\d\d\.json$/);
    const data = JSON.parse(readFileSync((await download.path())!, 'utf8'));
    expect(data).toMatchObject({ format: 'hydra-mcp-export', sub: user.sub, account: { email: user.email } });
    expect(data.notes.map((n: { title: string }) => n.title)).toEqual(titles);
    const cli = await runUserCli(stack.env, ['export', user.email]);
    expect(cli.code).toBe(0);
    expect({ ...JSON.parse(cli.out), exportedAt: data.exportedAt }).toEqual(data);

    // Delete: the confirmation page, then a missing tick, then the real thing.
    await tabTo(page, 'Delete my account');
    await page.keyboard.press('Enter');
    await page.waitForURL(`${stack.baseUrl}/account/delete`);
    expect(await tabOrder(page)).toEqual(['Download my data', 'password', 'confirm', 'Delete my account', 'Cancel and go back to your account']);
    expect(await accessible(page, '#confirm')).toMatchObject({ role: 'checkbox', name: 'I understand that my account and its data will be deleted for good' });
    await shot(page, 'delete');
    await tabTo(page, 'password');
    await page.keyboard.type(NEW_PASSWORD);
    await tabTo(page, 'Delete my account');
    await page.keyboard.press('Enter');
    await page.locator('#confirm-error').waitFor();
    expect(await page.title()).toMatch(/^Error: Delete your account/);
    expect(await focused(page)).toBe('confirm');
    expect(await accessible(page, '#confirm')).toMatchObject({ description: expect.stringContaining('Tick the box to confirm'), invalid: 'true' });
    await shot(page, 'delete-error');
    expect((await call(mcp, 'notes_list')).isError, 'nothing was deleted yet').toBe(false);

    await page.keyboard.press('Space');
    await tabTo(page, 'password');
    await page.keyboard.type(NEW_PASSWORD);
    await tabTo(page, 'Delete my account');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Your account has been deleted' }).waitFor();
    await shot(page, 'deleted');

    // Gone for the app and for the browser, and no row left.
    await expect(call(mcp, 'notes_list')).rejects.toThrow();
    await page.goto(`${stack.baseUrl}/account`);
    expect(await page.getByRole('button', { name: 'Sign in' }).isVisible(), 'the account session ended').toBe(true);
    const db = await openDatabase(loadConfig(stack.env).database);
    try {
      expect(await db.selectFrom('notes').select('id').where('sub', '=', user.sub).execute()).toEqual([]);
      expect(await db.selectFrom('users').select('id').where('id', '=', user.sub).execute()).toEqual([]);
    } finally {
      await db.destroy();
    }
    await context.close();
  });
});
