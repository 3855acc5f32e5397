import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ENV_KEYS, loadConfig } from '../../src/config/config.js';

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const compose = parse(readFileSync(root('docker-compose.yml'), 'utf8')) as {
  services: Record<string, { environment?: Record<string, string>; ports?: string[]; image?: string; command?: string }>;
};
// Read by `npm start` and hydra/build.sh only, not by the server.
const START_ONLY_KEYS = ['HYDRA_DATA_DIR', 'HYDRA_ACCESS_TOKEN_STRATEGY', 'HYDRA_LOG', 'HYDRA_MCP_CACHE'];

/** Docker cannot run here: the compose file is held to the config schema by reading it. */
describe('docker-compose.yml and .env.example agree with the config schema', () => {
  it("the app service sets only variables the server reads, and they validate", () => {
    const env = compose.services.app!.environment!;
    expect(Object.keys(env).filter((k) => !ENV_KEYS.includes(k))).toEqual([]);
    // Valid as a whole, except for the placeholders production mode refuses on purpose.
    expect(() => loadConfig({ ...env, NODE_ENV: 'development' })).not.toThrow();
    expect(() => loadConfig({ ...env, NODE_ENV: 'production' })).toThrow('placeholder');
  });

  it('.env.example lists every variable the server reads, and nothing unknown', () => {
    const listed = [...readFileSync(root('.env.example'), 'utf8').matchAll(/^# ([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!);
    expect(ENV_KEYS.filter((k) => !listed.includes(k))).toEqual([]);
    expect(listed.filter((k) => !ENV_KEYS.includes(k) && !START_ONLY_KEYS.includes(k))).toEqual([]);
  });

  it("Hydra's admin port is not published, and Hydra's image is the version the Go build uses", () => {
    const hydra = compose.services.hydra!;
    expect((hydra.ports ?? []).some((p) => p.includes('4445'))).toBe(false);
    const goVersion = /github\.com\/ory\/hydra\/v2 (v[\d.]+)/.exec(readFileSync(root('hydra/go.mod'), 'utf8'))![1];
    expect(hydra.image).toBe(`oryd/hydra:${goVersion}`);
    expect(compose.services['hydra-migrate']!.image).toBe(`oryd/hydra:${goVersion}`);
  });
});
