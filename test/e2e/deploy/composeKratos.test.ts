import { beforeAll, describe, expect, it } from 'vitest';
import { ensureKratosBinary, startKratos } from '../../../scripts/kratos.js';
import { compose, interpolate, kratosGoVersion } from '../../deploy/composeFile.js';

/** The compose file's Kratos service, read without Docker (test/deploy/compose.test.ts), here run on the real binary. */
describe('docker-compose.yml: Ory Kratos, opt-in (profile "kratos")', () => {
  const kratos = compose.services.kratos!;
  let kratosBinary: string;
  // Built once and cached (kratos/build.sh); a first build takes minutes, within the hook timeout.
  beforeAll(async () => {
    kratosBinary = await ensureKratosBinary();
  });

  it("the real Kratos v1.3.1 accepts the service's settings with kratos.yml (DSN memory, on loopback)", async () => {
    const env: Record<string, string> = interpolate({ ...kratos.environment! });
    // Only what cannot apply outside the container: its database, its mount path, all interfaces.
    delete env.DSN;
    delete env.IDENTITY_SCHEMAS;
    env.SERVE_PUBLIC_HOST = '127.0.0.1';
    const log: string[] = [];
    const running = await startKratos({
      binary: kratosBinary,
      dsn: 'memory',
      uiBaseUrl: 'http://127.0.0.1:3000',
      env,
      log: (l) => log.push(l),
    });
    try {
      expect(running.version).toBe(kratosGoVersion());
      // The flows point at our pages as the app service's PUBLIC_BASE_URL names them.
      const res = await fetch(`${running.publicUrl}/self-service/login/browser`, { redirect: 'manual' });
      expect(res.headers.get('location')).toMatch(/^https:\/\/mcp\.localhost\/kratos\/login\?flow=/);
    } finally {
      await running.stop();
    }
  }, 60_000);
});
