/**
 * MCP Inspector for the browser test, installed on first use into a cache
 * outside the repo (like the Hydra binary) at a pinned version, with the
 * Node 22 it needs (npm's `node@22` package) — this project itself runs on
 * Node 20+, Inspector 2.x asks for Node >= 22.19.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Browser, chromium, type Page } from 'playwright-core';

export const INSPECTOR_VERSION = '2.12.0';
const NODE_PACKAGE = 'node@22.23.3';

export interface RunningInspector {
  /** The UI URL including its API token. */
  url: string;
  log: string[];
  stop(): Promise<void>;
}

function cacheDir(): string {
  return join(process.env.HYDRA_MCP_CACHE ?? join(homedir(), '.cache', 'hydra-mcp'), `inspector-${INSPECTOR_VERSION}`);
}

/** Install Inspector and Node 22 into the cache if missing; returns the cache dir. */
export async function ensureInspector(log: (line: string) => void = () => {}): Promise<string> {
  const dir = cacheDir();
  const launcher = join(dir, 'node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js');
  const node = join(dir, 'node_modules/.bin/node');
  if (existsSync(launcher) && existsSync(node)) return dir;
  mkdirSync(dir, { recursive: true });
  // npm 11 runs install scripts only for packages named here (node@22 fetches its binary package).
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ private: true, allowScripts: { node: true, '@modelcontextprotocol/inspector': true } }, null, 2),
  );
  log(`installing @modelcontextprotocol/inspector@${INSPECTOR_VERSION} and ${NODE_PACKAGE} into ${dir}`);
  await promisify(execFile)(
    'npm',
    ['install', '--no-audit', '--no-fund', '--loglevel=error', `@modelcontextprotocol/inspector@${INSPECTOR_VERSION}`, NODE_PACKAGE],
    { cwd: dir, maxBuffer: 16 * 1024 * 1024, timeout: 600_000 },
  );
  if (!existsSync(launcher) || !existsSync(node)) throw new Error(`MCP Inspector install in ${dir} is incomplete`);
  return dir;
}

/** Start Inspector's web UI pointed at `serverUrl` (Streamable HTTP), with a private HOME. */
export async function startInspector(dir: string, serverUrl: string, home: string): Promise<RunningInspector> {
  const log: string[] = [];
  const child = spawn(
    join(dir, 'node_modules/.bin/node'),
    [join(dir, 'node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js'), '--web', '--transport', 'http', '--server-url', serverUrl],
    // A fresh HOME: no client registrations or tokens left from earlier runs; no browser auto-open.
    { env: { ...process.env, HOME: home, BROWSER: 'none', MCP_INSPECTOR_SECRET_STORE: 'memory' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Inspector did not start:\n${log.join('\n')}`)), 60_000);
    const onData = (d: Buffer) => {
      for (const line of d.toString().split('\n')) {
        log.push(line);
        const m = /(http:\/\/127\.0\.0\.1:\d+\/?\?MCP_INSPECTOR_API_TOKEN=[0-9a-f]+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`Inspector exited with ${code}:\n${log.join('\n')}`)));
  });
  return {
    url,
    log,
    async stop() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

export const CHROMIUM = '/usr/bin/chromium';

/** Inspector (installed on first use) against `serverUrl` and a headless Debian Chromium, with one stop for both. */
export async function inspectorInChromium(serverUrl: string): Promise<{ inspector: RunningInspector; browser: Browser; stop(): Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)`);
  const dir = await ensureInspector((l) => process.stderr.write(`[inspector] ${l}\n`));
  const home = mkdtempSync(join(tmpdir(), 'hydra-mcp-inspector-home-'));
  const inspector = await startInspector(dir, serverUrl, home);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return {
    inspector,
    browser,
    async stop() {
      await browser.close();
      await inspector.stop();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Back in Inspector after Allow: wait until connected, run whoami, and wait for the `sub` it should show. */
export async function runWhoamiInInspector(page: Page, inspectorUrl: string, sub: string, screenshot: string): Promise<number> {
  await page.waitForURL((u) => u.origin === new URL(inspectorUrl).origin);
  await page.getByText('Connected', { exact: true }).waitFor({ timeout: 30_000 });
  await page.getByText('Tools', { exact: true }).first().click();
  await page.getByRole('button', { name: /whoami/ }).click();
  await page.getByRole('button', { name: 'Execute Tool' }).click();
  const result = page.getByText(`"sub": "${sub}"`);
  await result.waitFor({ timeout: 30_000 });
  await page.screenshot({ path: screenshot });
  return result.count();
}
