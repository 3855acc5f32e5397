import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { hydraAdminUrls, hydraAuthorizationUrl, hydraPublicUrls } from '../../src/hydra/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HYDRA_PATHS = ['/admin/', '/oauth2/', '/health/', '/.well-known/jwks'];
/** Ory Kratos's paths: only in src/kratos/ (its admin and health paths share Hydra's prefixes). */
const KRATOS_PATHS = ['/self-service/', '/sessions/whoami', '/admin/identities'];
const inside = (room: string, file: string) => !relative(room, file).startsWith('..');

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sources(path)));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

describe('Hydra has one room (src/hydra/)', () => {
  it('no file in src/ or scripts/ outside src/hydra/ names a Hydra endpoint path', async () => {
    const offenders: string[] = [];
    for (const file of [...(await sources('src')), ...(await sources('scripts'))]) {
      if (inside('src/hydra', file) || inside('src/kratos', file)) continue; // inside a room
      const text = await readFile(join(ROOT, file), 'utf8');
      for (const p of HYDRA_PATHS) if (text.includes(p)) offenders.push(`${file}: ${p}`);
    }
    expect(offenders).toEqual([]);
  });

  it('no file in src/ or scripts/ outside src/kratos/ names a Kratos endpoint path', async () => {
    const offenders: string[] = [];
    for (const file of [...(await sources('src')), ...(await sources('scripts'))]) {
      if (inside('src/kratos', file)) continue;
      const text = await readFile(join(ROOT, file), 'utf8');
      for (const p of KRATOS_PATHS) if (text.includes(p)) offenders.push(`${file}: ${p}`);
    }
    expect(offenders).toEqual([]);
  });

  it('builds each URL from the base as Hydra v2 serves it', () => {
    const pub = hydraPublicUrls('http://127.0.0.1:4444');
    expect([pub.token, pub.revoke, pub.jwks, pub.discovery].map(String)).toEqual([
      'http://127.0.0.1:4444/oauth2/token',
      'http://127.0.0.1:4444/oauth2/revoke',
      'http://127.0.0.1:4444/.well-known/jwks.json',
      'http://127.0.0.1:4444/.well-known/openid-configuration',
    ]);
    const admin = hydraAdminUrls(new URL('http://127.0.0.1:4445'));
    expect(admin.client('a/b c').href).toBe('http://127.0.0.1:4445/admin/clients/a%2Fb%20c');
    expect(admin.flow('consent', 'accept').href).toBe('http://127.0.0.1:4445/admin/oauth2/auth/requests/consent/accept');
    expect(admin.ready.href).toBe('http://127.0.0.1:4445/health/ready');
    // The browser-facing authorization URL keeps an issuer's path (https://host/hydra).
    expect(hydraAuthorizationUrl(new URL('https://id.example/hydra')).href).toBe('https://id.example/hydra/oauth2/auth');
    expect(hydraAuthorizationUrl(new URL('http://127.0.0.1:4444/')).href).toBe('http://127.0.0.1:4444/oauth2/auth');
  });
});
