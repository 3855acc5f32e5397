/**
 * docker-compose.yml as `docker compose` reads it, for the tests that hold it
 * to the config schema (test/deploy/compose.test.ts) and to the real Kratos
 * (test/e2e/deploy/composeKratos.test.ts).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** A path in the repository, from its root. */
export const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));

export interface Service {
  environment?: Record<string, string>;
  ports?: string[];
  image?: string;
  command?: string;
  profiles?: string[];
  networks?: string[];
  network_mode?: string;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  secrets?: string[];
}

export const compose = parse(readFileSync(root('docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  secrets?: Record<string, { file: string }>;
};

/** Compose's `${NAME:-default}` as `docker compose` reads it from `vars`. */
export const interpolate = (env: Record<string, string>, vars: Record<string, string> = {}) =>
  Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.replace(/\$\{(\w+):-([^}]*)\}/g, (_m, name: string, dflt: string) => vars[name] || dflt)]));

/** The Kratos version the Go build uses (kratos/go.mod). */
export const kratosGoVersion = () => /github\.com\/ory\/kratos (v[\d.]+)/.exec(readFileSync(root('kratos/go.mod'), 'utf8'))![1];
