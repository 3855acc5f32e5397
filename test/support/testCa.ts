import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCa {
  /** Path of the CA certificate (PEM): for CIMD_TEST_LOOPBACK_CA and Go's SSL_CERT_FILE. */
  caFile: string;
  caPem: string;
  /** A server certificate signed by the CA, for the `hosts` given (IP and DNS SANs). */
  serverCert: string;
  serverKey: string;
  remove(): Promise<void>;
}

/**
 * A throw-away certificate authority and one server certificate, made with
 * the openssl CLI at test time (EC P-256, valid one day). Go (Hydra) checks
 * SANs and CA basic constraints strictly, so both are set.
 */
export async function makeTestCa(hosts: string[] = ['127.0.0.1', 'localhost']): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'hydra-mcp-ca-'));
  const p = (name: string) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '1', '-subj', '/CN=hydra-mcp test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run('openssl', ['req', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', `/CN=${hosts[0]}`]);
  const san = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
  await writeFile(
    p('server.ext'),
    `subjectAltName=${san}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`,
  );
  await run('openssl', [
    'x509', '-req', '-in', p('server.csr'), '-CA', p('ca.pem'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-out', p('server.pem'), '-days', '1', '-extfile', p('server.ext'),
  ]);
  return {
    caFile: p('ca.pem'),
    caPem: await readFile(p('ca.pem'), 'utf8'),
    serverCert: await readFile(p('server.pem'), 'utf8'),
    serverKey: await readFile(p('server.key'), 'utf8'),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** How one path answers: a status, headers and a body; optionally slowly. */
export interface Route {
  status?: number;
  headers?: Record<string, string>;
  body?: string | object;
  /** Wait this long before answering (a slow server). */
  delayMs?: number;
}

export interface DocumentServer {
  /** https://127.0.0.1:<port> */
  origin: string;
  port: number;
  /** Set or replace what `path` answers. */
  route(path: string, route: Route): void;
  /** Paths requested so far, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

/** An https server on 127.0.0.1 under the test CA's certificate, serving fixed answers per path. */
export async function startDocumentServer(ca: TestCa): Promise<DocumentServer> {
  const routes = new Map<string, Route>();
  const requests: string[] = [];
  const server: Server = createServer({ cert: ca.serverCert, key: ca.serverKey }, (req, res) => {
    const path = req.url ?? '/';
    requests.push(path);
    const r: Route = routes.get(path.split('?')[0]!) ?? { status: 404, body: { error: 'not found' } };
    const answer = () => {
      const body = typeof r.body === 'string' ? r.body : JSON.stringify(r.body ?? {});
      res.writeHead(r.status ?? 200, { 'content-type': 'application/json', ...r.headers });
      res.end(body);
    };
    if (r.delayMs) setTimeout(answer, r.delayMs).unref();
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    origin: `https://127.0.0.1:${port}`,
    port,
    route: (path, route) => routes.set(path, route),
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
