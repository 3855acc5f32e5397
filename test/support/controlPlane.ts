import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * A real Kubernetes control plane on 127.0.0.1, for the chart's proof on a
 * real API server (issue 28 #4): etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler and kwok, each built from its Go module and cached by
 * deploy/tools/build.sh, each in its own process group, all in one temp dir.
 *
 * kwok stands in for the kubelets: it marks the fake Nodes Ready, renews their
 * Leases and moves Pods through the Stages kwok ships (pod-ready, pod-complete,
 * pod-delete). No container ever runs: a Pod is "Ready" because kwok wrote its
 * status, and a Job's Pod "Succeeds" the same way.
 */

const run = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export type Component = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'kwok';
const COMPONENTS: Component[] = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'];

/** The cached binary of one tool, built first if need be (deploy/tools/build.sh; its path is the last stdout line). */
export async function toolBinary(tool: Component | 'helm'): Promise<string> {
  const { stdout } = await run('bash', [join(repoRoot, 'deploy/tools/build.sh'), tool], {
    cwd: repoRoot,
    maxBuffer: 16 * 1024 * 1024,
    // A first build of a Kubernetes binary takes minutes, and waits on the build lock.
    timeout: 40 * 60_000,
  });
  const path = stdout.trim().split('\n').pop() ?? '';
  if (!path || !existsSync(path)) throw new Error(`deploy/tools/build.sh ${tool} printed no binary: ${stdout}`);
  return path;
}

export interface ApiResponse<T = any> {
  status: number;
  body: T;
}

export interface ControlPlane {
  /** The temp dir holding certificates, etcd's data, the kubeconfig files and the logs. */
  dir: string;
  /** An admin kubeconfig (client certificate in system:masters), for helm. */
  kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Each component's log file (stdout and stderr). */
  logs: Record<Component, string>;
  /** Each component's `--version` line. */
  versions: Record<Component, string>;
  /** The fake Nodes kwok manages. */
  nodes: string[];
  /** One request to the API server as the admin (JSON in, JSON out). */
  api<T = any>(method: string, path: string, body?: unknown, contentType?: string): Promise<ApiResponse<T>>;
  /** Each running component's resident memory now and at its peak (MiB) and CPU time so far (s), from /proc. */
  usage(): Record<Component, { rssMiB: number; peakRssMiB: number; cpuSeconds: number } | undefined>;
  /** The last `lines` lines of a component's log. */
  tail(component: Component, lines?: number): string;
  /** Kills every process group, then removes the temp dir (unless keepDir). */
  stop(opts?: { keepDir?: boolean }): Promise<void>;
}

export interface ControlPlaneOptions {
  /** How many fake Nodes (default 3). */
  nodes?: number;
  /** Called with progress lines (default console.log). */
  log?: (line: string) => void;
}

/** A loopback port the OS has just handed out (and we released). */
async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

async function freePorts(n: number): Promise<number[]> {
  // Hold none open while asking for the next: distinct in practice, and checked.
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, failFast?: () => string | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const dead = failFast?.();
    if (dead) throw new Error(`${what}: ${dead}`);
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    await sleep(250);
  }
}

/** CA, apiserver serving cert, client certs and the service-account key pair, with the openssl CLI. */
async function makePki(pki: string): Promise<void> {
  const p = (f: string) => join(pki, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string, cn: string) =>
    run('openssl', [
      'req', '-x509', ...ec, '-keyout', p(`${name}.key`), '-out', p(`${name}.crt`), '-days', '2', '-subj', `/CN=${cn}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
    ]);
  await ca('ca', 'hydra-mcp test kubernetes CA');
  // As kubeadm: a second CA for the aggregation layer's front proxy (requestheader).
  await ca('front-proxy-ca', 'hydra-mcp test front-proxy CA');
  const leaf = async (name: string, subj: string, ext: string, signer = 'ca') => {
    await run('openssl', ['req', ...ec, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', subj]);
    await writeFile(p(`${name}.ext`), `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n${ext}\n`);
    await run('openssl', [
      'x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${signer}.crt`), '-CAkey', p(`${signer}.key`), '-CAcreateserial',
      '-out', p(`${name}.crt`), '-days', '2', '-extfile', p(`${name}.ext`),
    ]);
  };
  const sans = [
    'IP:127.0.0.1', 'IP:10.96.0.1', 'DNS:localhost', 'DNS:kubernetes', 'DNS:kubernetes.default',
    'DNS:kubernetes.default.svc', 'DNS:kubernetes.default.svc.cluster.local',
  ].join(',');
  await leaf('apiserver', '/CN=kube-apiserver', `extendedKeyUsage=serverAuth\nsubjectAltName=${sans}`);
  await leaf('admin', '/O=system:masters/CN=kubernetes-admin', 'extendedKeyUsage=clientAuth');
  await leaf('controller-manager', '/CN=system:kube-controller-manager', 'extendedKeyUsage=clientAuth');
  await leaf('scheduler', '/CN=system:kube-scheduler', 'extendedKeyUsage=clientAuth');
  await leaf('front-proxy-client', '/CN=front-proxy-client', 'extendedKeyUsage=clientAuth', 'front-proxy-ca');
  // Service-account tokens: RSA, as kubeadm makes them.
  await run('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', p('sa.key')]);
  await run('openssl', ['pkey', '-in', p('sa.key'), '-pubout', '-out', p('sa.pub')]);
}

function kubeconfig(server: string, caFile: string, user: string, certFile: string, keyFile: string): string {
  // JSON is YAML: every client reads it.
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server, 'certificate-authority': caFile } }],
      users: [{ name: user, user: { 'client-certificate': certFile, 'client-key': keyFile } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user } }],
      'current-context': 'test',
    },
    null,
    2,
  );
}

interface Proc {
  name: Component;
  child: ChildProcess;
  out: WriteStream;
  exited: boolean;
  exitInfo?: string;
}

/** Every process group still running, killed if the test process exits without stop(). */
const live = new Set<number>();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const pgid of live) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  });
}

let versionsPrinted = false;

/** Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on 127.0.0.1, and fake Nodes; resolves once all is ready. */
export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const say = opts.log ?? ((l: string) => console.log(`[control-plane] ${l}`));
  const nodeCount = opts.nodes ?? 3;
  installExitHook();

  // Sequential: build.sh takes one lock anyway, and a cache hit is instant.
  const bin = {} as Record<Component, string>;
  for (const c of COMPONENTS) bin[c] = await toolBinary(c);
  const stagesFile = `${bin.kwok}.stages.yaml`;
  if (!existsSync(stagesFile)) throw new Error(`kwok's stages file is missing beside its binary: ${stagesFile} (deploy/tools/build.sh kwok writes it)`);

  const versions = {} as Record<Component, string>;
  for (const c of COMPONENTS) {
    const { stdout, stderr } = await run(bin[c], ['--version']).catch((e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
    versions[c] = `${stdout}${stderr}`.trim().split('\n').slice(0, c === 'etcd' ? 1 : 2).join(' ').replace(/\s+/g, ' ');
  }
  if (!versionsPrinted) {
    versionsPrinted = true;
    for (const c of COMPONENTS) say(`${c}: ${versions[c]}`);
  }

  const dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-k8s-'));
  const pki = join(dir, 'pki');
  const logDir = join(dir, 'logs');
  await mkdir(pki);
  await mkdir(logDir);
  await mkdir(join(dir, 'etcd'), { mode: 0o700 });
  await makePki(pki);
  const p = (f: string) => join(pki, f);

  const [etcdClient, etcdPeer, apiPort, kcmPort, schedPort, kwokPort] = (await freePorts(6)) as [number, number, number, number, number, number];
  const server = `https://127.0.0.1:${apiPort}`;
  const kubeconfigPath = join(dir, 'admin.kubeconfig');
  await writeFile(kubeconfigPath, kubeconfig(server, p('ca.crt'), 'kubernetes-admin', p('admin.crt'), p('admin.key')));
  const kcmConfig = join(dir, 'controller-manager.kubeconfig');
  await writeFile(kcmConfig, kubeconfig(server, p('ca.crt'), 'system:kube-controller-manager', p('controller-manager.crt'), p('controller-manager.key')));
  const schedConfig = join(dir, 'scheduler.kubeconfig');
  await writeFile(schedConfig, kubeconfig(server, p('ca.crt'), 'system:kube-scheduler', p('scheduler.crt'), p('scheduler.key')));

  const logs = Object.fromEntries(COMPONENTS.map((c) => [c, join(logDir, `${c}.log`)])) as Record<Component, string>;
  const procs: Proc[] = [];

  const startProc = (name: Component, args: string[]): Proc => {
    const out = createWriteStream(logs[name]);
    out.write(`$ ${bin[name]} ${args.join(' ')}\n`);
    // detached: its own process group, so stop() kills it and anything it forks.
    const child = spawn(bin[name], args, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const proc: Proc = { name, child, out, exited: false };
    child.stdout!.pipe(out, { end: false });
    child.stderr!.pipe(out, { end: false });
    if (child.pid) live.add(child.pid);
    child.on('exit', (code, signal) => {
      proc.exited = true;
      proc.exitInfo = `${name} exited (code ${code}, signal ${signal}); log ${logs[name]}:\n${tailOf(name, 30)}`;
      if (child.pid) live.delete(child.pid);
    });
    child.on('error', (e) => {
      proc.exited = true;
      proc.exitInfo = `${name} failed to start: ${e.message}`;
    });
    procs.push(proc);
    return proc;
  };
  const tailOf = (name: Component, lines = 40): string => {
    try {
      return readFileSync(logs[name], 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };
  const usage = () => {
    const out = {} as ReturnType<ControlPlane['usage']>;
    for (const c of COMPONENTS) {
      const pr = procs.find((x) => x.name === c);
      out[c] = undefined;
      if (!pr?.child.pid || pr.exited) continue;
      try {
        const status = readFileSync(`/proc/${pr.child.pid}/status`, 'utf8');
        const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
        // /proc/<pid>/stat: utime and stime, fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
        const stat = readFileSync(`/proc/${pr.child.pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const ticks = Number(fields[11]) + Number(fields[12]);
        out[c] = { rssMiB: Math.round(kib('VmRSS') / 1024), peakRssMiB: Math.round(kib('VmHWM') / 1024), cpuSeconds: ticks / 100 };
      } catch {
        /* not on Linux, or just exited */
      }
    }
    return out;
  };
  const anyDead = () => procs.find((pr) => pr.exited)?.exitInfo;

  const agent = new Agent({
    ca: await readFile(p('ca.crt')),
    cert: await readFile(p('admin.crt')),
    key: await readFile(p('admin.key')),
    keepAlive: true,
    maxSockets: 8,
  });
  const api = <T = any>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse<T>> =>
    new Promise((resolveReq, reject) => {
      const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      const req = httpsRequest(
        `${server}${path}`,
        {
          method,
          agent,
          headers: { accept: 'application/json', ...(payload !== undefined ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}) },
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              /* plain text (/readyz) */
            }
            resolveReq({ status: res.statusCode ?? 0, body: parsed as T });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });

  /** Health of a component's own https port (self-signed in its --cert-dir). */
  const healthz = (port: number): Promise<boolean> =>
    new Promise((r) => {
      const req = httpsRequest(`https://127.0.0.1:${port}/healthz`, { rejectUnauthorized: false, timeout: 5_000 }, (res) => {
        res.resume();
        r(res.statusCode === 200);
      });
      req.on('error', () => r(false));
      req.on('timeout', () => req.destroy());
      req.end();
    });

  let stopped = false;
  const stop = async ({ keepDir = false } = {}) => {
    if (stopped) return;
    stopped = true;
    agent.destroy();
    // Clients first, storage last.
    for (const pr of [...procs].reverse()) {
      const pid = pr.child.pid;
      if (!pid || pr.exited) continue;
      const gone = new Promise<void>((r) => (pr.exited ? r() : pr.child.once('exit', () => r())));
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      const t = setTimeout(() => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 10_000);
      await gone;
      clearTimeout(t);
      live.delete(pid);
    }
    for (const pr of procs) pr.out.end();
    if (!keepDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    const t0 = Date.now();
    startProc('etcd', [
      '--name=node0',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=node0=http://127.0.0.1:${etcdPeer}`,
      '--initial-cluster-state=new',
      '--auto-compaction-retention=1',
      '--quota-backend-bytes=536870912',
      '--log-level=warn',
    ]);
    await waitUntil('etcd /health', 60_000, async () => {
      const res = await fetch(`http://127.0.0.1:${etcdClient}/health`);
      const j = (await res.json()) as { health?: string };
      return j.health === 'true' ? true : undefined;
    }, anyDead);
    const tEtcd = Date.now();

    startProc('kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1',
      // Only loopback is ours. The API server then cannot store 127.0.0.1 in
      // the "kubernetes" Service's Endpoints (loopback is invalid there) and
      // logs so every 10 s; nothing here reaches it through that Service.
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${p('apiserver.crt')}`,
      `--tls-private-key-file=${p('apiserver.key')}`,
      `--client-ca-file=${p('ca.crt')}`,
      `--service-account-key-file=${p('sa.pub')}`,
      `--service-account-signing-key-file=${p('sa.key')}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      '--api-audiences=https://kubernetes.default.svc.cluster.local',
      '--service-cluster-ip-range=10.96.0.0/16',
      '--authorization-mode=Node,RBAC',
      // The front proxy, as kubeadm sets it (else the controller manager and
      // scheduler log a missing requestheader CA bundle every few seconds).
      `--requestheader-client-ca-file=${p('front-proxy-ca.crt')}`,
      '--requestheader-allowed-names=front-proxy-client',
      '--requestheader-username-headers=X-Remote-User',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      `--proxy-client-cert-file=${p('front-proxy-client.crt')}`,
      `--proxy-client-key-file=${p('front-proxy-client.key')}`,
      // The default admission plugins (NamespaceLifecycle, ServiceAccount,
      // DefaultStorageClass, ResourceQuota, PodSecurity, …) plus the kubeadm one.
      '--enable-admission-plugins=NodeRestriction',
      '--allow-privileged=true',
      '--profiling=false',
    ]);
    await waitUntil('kube-apiserver /readyz', 120_000, async () => {
      const res = await api('GET', '/readyz');
      return res.status === 200 ? true : undefined;
    }, anyDead);
    const tApi = Date.now();

    const delegated = (kc: string) => [`--authentication-kubeconfig=${kc}`, `--authorization-kubeconfig=${kc}`];
    startProc('kube-controller-manager', [
      `--kubeconfig=${kcmConfig}`,
      ...delegated(kcmConfig),
      '--bind-address=127.0.0.1',
      `--secure-port=${kcmPort}`,
      `--cert-dir=${join(dir, 'kcm-certs')}`,
      `--service-account-private-key-file=${p('sa.key')}`,
      `--root-ca-file=${p('ca.crt')}`,
      `--cluster-signing-cert-file=${p('ca.crt')}`,
      `--cluster-signing-key-file=${p('ca.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--controllers=*',
      '--use-service-account-credentials=true',
      '--leader-elect=false',
      '--profiling=false',
    ]);
    startProc('kube-scheduler', [
      `--kubeconfig=${schedConfig}`,
      ...delegated(schedConfig),
      '--bind-address=127.0.0.1',
      `--secure-port=${schedPort}`,
      `--cert-dir=${join(dir, 'scheduler-certs')}`,
      '--leader-elect=false',
      '--profiling=false',
    ]);
    startProc('kwok', [
      `--kubeconfig=${kubeconfigPath}`,
      `--config=${stagesFile}`,
      '--manage-all-nodes=true',
      '--node-lease-duration-seconds=40',
      `--server-address=127.0.0.1:${kwokPort}`,
      '--node-ip=127.0.0.1',
    ]);
    await waitUntil('kube-controller-manager /healthz', 60_000, async () => ((await healthz(kcmPort)) ? true : undefined), anyDead);
    await waitUntil('kube-scheduler /healthz', 60_000, async () => ((await healthz(schedPort)) ? true : undefined), anyDead);

    // Fake Nodes, as kwokctl's node template makes them: kwok's annotation,
    // capacity for the scheduler, no taints.
    const nodes: string[] = [];
    for (let i = 0; i < nodeCount; i++) {
      const name = `kwok-node-${i}`;
      const res = await api('POST', '/api/v1/nodes', {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name,
          annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
          labels: {
            'kubernetes.io/arch': 'amd64',
            'kubernetes.io/os': 'linux',
            'kubernetes.io/hostname': name,
            'kubernetes.io/role': 'agent',
            'node-role.kubernetes.io/agent': '',
            'topology.kubernetes.io/zone': `zone-${i % 2}`,
            type: 'kwok',
          },
        },
        spec: { podCIDR: `10.244.${i}.0/24`, podCIDRs: [`10.244.${i}.0/24`] },
        status: {
          // What a kubelet reports (ephemeral-storage too: a Pod that requests
          // it is unschedulable on a Node without it).
          allocatable: { cpu: '32', memory: '256Gi', pods: '110', 'ephemeral-storage': '100Gi' },
          capacity: { cpu: '32', memory: '256Gi', pods: '110', 'ephemeral-storage': '100Gi' },
          nodeInfo: { architecture: 'amd64', operatingSystem: 'linux' },
        },
      });
      if (res.status !== 201) throw new Error(`creating Node ${name}: ${res.status} ${JSON.stringify(res.body)}`);
      nodes.push(name);
    }
    await waitUntil('the fake Nodes Ready and untainted', 60_000, async () => {
      const res = await api<{ items: { metadata: { name: string }; spec: { taints?: unknown[] }; status: { conditions?: { type: string; status: string }[] } }[] }>('GET', '/api/v1/nodes');
      const ready = res.body.items.filter(
        (n) => n.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && !(n.spec.taints ?? []).length,
      );
      return ready.length >= nodeCount ? true : undefined;
    }, anyDead);
    // Pods need the namespace's "default" ServiceAccount (the controller manager makes it).
    await waitUntil('ServiceAccount default/default', 60_000, async () => {
      const res = await api('GET', '/api/v1/namespaces/default/serviceaccounts/default');
      return res.status === 200 ? true : undefined;
    }, anyDead);
    say(`ready in ${Date.now() - t0} ms (etcd ${tEtcd - t0} ms, kube-apiserver ${tApi - tEtcd} ms, controllers, scheduler, kwok and ${nodeCount} Nodes ${Date.now() - tApi} ms) at ${server}; dir ${dir}`);

    return {
      dir,
      kubeconfigPath,
      server,
      logs,
      versions,
      nodes,
      api,
      usage,
      tail: tailOf,
      stop,
    };
  } catch (e) {
    const tails = COMPONENTS.filter((c) => existsSync(logs[c]))
      .map((c) => `--- ${c} ---\n${tailOf(c, 15)}`)
      .join('\n');
    await stop({ keepDir: true });
    throw new Error(`control plane failed to start (logs kept in ${logDir}): ${(e as Error).message}\n${tails}`);
  }
}
