/**
 * The official MCP conformance suite (`@modelcontextprotocol/conformance`),
 * its `authorization` leg, run as a child process on the Node 22 it needs.
 *
 * Both come from the npm registry at the versions pinned in
 * runner/package-lock.json, installed with `npm ci` on first use into a cache
 * outside the repo (like the Hydra binary), keyed by a hash of that lockfile.
 * They are not root devDependencies because npm links node@22's binary as
 * `node_modules/.bin/node`, which would put every npm script of the project
 * (vitest, tsc, the server's native SQLite module) on Node 22.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const RUNNER = fileURLToPath(new URL('./runner/', import.meta.url));
const MANIFESTS = ['package.json', 'package-lock.json'];

/** One check as the suite writes it to `checks.json`. */
export interface ConformanceCheck {
  id: string;
  name: string;
  description: string;
  status: 'SUCCESS' | 'FAILURE' | 'WARNING' | 'SKIPPED' | 'INFO';
  errorMessage?: string;
}

export interface ScenarioResult {
  scenario: string;
  checks: ConformanceCheck[];
}

export interface AuthorizationLegRun {
  /** Resolves with the URL the suite asks a person to open (authorization-code-grant). */
  authorizationUrl: Promise<string>;
  /** Resolves when the suite exits, with its exit code. */
  exited: Promise<number | null>;
  /** Everything it printed, stdout and stderr interleaved. */
  output: string[];
  kill(): void;
}

/** Where the suite and its Node 22 are installed. */
export interface ConformanceSuite {
  node: string;
  cli: string;
}

/** Install the pinned suite and Node 22 (npm registry only) into the cache unless present. */
export async function ensureConformanceSuite(log: (line: string) => void = () => {}): Promise<ConformanceSuite> {
  const hash = createHash('sha256');
  for (const f of MANIFESTS) hash.update(readFileSync(join(RUNNER, f)));
  const cache = process.env.HYDRA_MCP_CACHE ?? join(homedir(), '.cache', 'hydra-mcp');
  const dir = join(cache, `conformance-${hash.digest('hex').slice(0, 12)}`);
  const suite = { node: join(dir, 'node_modules/node/bin/node'), cli: join(dir, 'node_modules/@modelcontextprotocol/conformance/dist/index.js') };
  // Written only after a whole install, so an interrupted one is redone.
  const done = join(dir, '.installed');
  if (existsSync(done)) return suite;
  mkdirSync(dir, { recursive: true });
  for (const f of MANIFESTS) copyFileSync(join(RUNNER, f), join(dir, f));
  log(`npm ci in ${dir} (@modelcontextprotocol/conformance and node@22, as pinned in ${RUNNER}package-lock.json)`);
  await promisify(execFile)('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: dir,
    maxBuffer: 16 * 1024 * 1024,
    timeout: 600_000,
  });
  if (!existsSync(suite.node) || !existsSync(suite.cli)) throw new Error(`conformance suite install in ${dir} is incomplete`);
  writeFileSync(done, '');
  return suite;
}

/**
 * Start `conformance authorization` against `issuer`. With a client id it
 * runs both scenarios: the metadata endpoint, then the authorization-code
 * grant (PKCE S256, `state`, RFC 8707 `resource`), which prints a URL for a
 * person and waits for the redirect on http://127.0.0.1:<port>/callback.
 */
export function startAuthorizationLeg(suite: ConformanceSuite, opts: {
  /** Must equal the metadata's `issuer` character for character. */
  issuer: string;
  clientId: string;
  resource: string;
  callbackPort: number;
  outputDir: string;
}): AuthorizationLegRun {
  const args = [
    suite.cli,
    'authorization',
    '--url', opts.issuer,
    '--client-id', opts.clientId,
    '--resource', opts.resource,
    '--port', String(opts.callbackPort),
    '--output-dir', opts.outputDir,
  ];
  const child = spawn(suite.node, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  let announced = false;
  let resolveUrl!: (url: string) => void;
  let rejectUrl!: (err: Error) => void;
  const authorizationUrl = new Promise<string>((resolve, reject) => {
    resolveUrl = resolve;
    rejectUrl = reject;
  });
  let pending = '';
  const onData = (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      output.push(line);
      // The suite prints this sentence, then the URL alone on the next line.
      if (line.startsWith('Access the following URL in your browser')) announced = true;
      else if (announced && /^https?:\/\//.test(line.trim())) {
        announced = false;
        resolveUrl(line.trim());
      }
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number | null>((resolve) =>
    child.once('close', (code) => {
      if (pending) output.push(pending);
      rejectUrl(new Error(`the suite exited (${code}) without printing an authorization URL:\n${output.join('\n')}`));
      resolve(code);
    }),
  );
  return { authorizationUrl, exited, output, kill: () => child.kill('SIGTERM') };
}

/** Read every scenario's `checks.json` from the suite's output directory. */
export async function readResults(outputDir: string): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  for (const entry of (await readdir(outputDir, { withFileTypes: true })).filter((e) => e.isDirectory())) {
    // Folders are named authorization-server-<scenario>-<ISO timestamp with - for : and .>.
    const scenario = /^authorization-server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$/.exec(entry.name)?.[1] ?? entry.name;
    const checks = JSON.parse(await readFile(join(outputDir, entry.name, 'checks.json'), 'utf8')) as ConformanceCheck[];
    results.push({ scenario, checks });
  }
  return results;
}
