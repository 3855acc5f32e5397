/**
 * Connected accounts upkeep: `hydra-mcp connections reencrypt` (or `npm run connections -- reencrypt`).
 * Exit codes: 0 done, 1 failure (or rows that could not be opened), 2 usage error.
 *
 * Key rotation: put a new key FIRST in CONNECTION_KEYS (keep the old ones),
 * restart the servers, run `reencrypt`, and drop an old key only once the
 * per-key counts it prints (connections and pending connect attempts) no
 * longer name it.
 */
import { loadConfig } from '../config/config.js';
import { verifierBinding } from '../connections/connectFlow.js';
import { type CredentialSealer, createSealer, SealError } from '../connections/sealing.js';
import { type ConnectionsStore, connectionsStore } from '../store/connectionsStore.js';
import { type ConnectStatesStore, connectStatesStore } from '../store/connectStatesStore.js';
import { openDatabase } from '../store/database.js';
import { type CliCommand, printingFailures } from './command.js';

const usage = (prog: string) => `usage: ${prog} <command>
  reencrypt   seal every stored connection and pending connect attempt
              with the newest key of CONNECTION_KEYS (the first); rows
              already sealed with it are left alone, so running it again
              is harmless`;

/** Rows read per query: the table is walked in pages, never loaded whole. */
const PAGE = 100;

type Tally = { rewrapped: number; changed: number; failed: number };
const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;

/** Connections: walked by key id (indexed), only rows not sealed with the newest key. */
async function reencryptConnections(store: ConnectionsStore, sealer: CredentialSealer): Promise<Tally> {
  const tally = { rewrapped: 0, changed: 0, failed: 0 };
  let after: { sub: string; provider: string } | undefined;
  for (;;) {
    const rows = await store.listNotSealedWith(sealer.newestKeyId, { limit: PAGE, ...(after ? { after } : {}) });
    for (const row of rows) {
      const bind = { sub: row.sub, provider: row.provider };
      try {
        const next = await sealer.seal(await sealer.open(row.sealed, bind), bind);
        if (await store.rewrap(row, { sealed: next, keyId: sealer.newestKeyId })) tally.rewrapped++;
        else tally.changed++;
      } catch (e) {
        if (!(e instanceof SealError)) throw e;
        tally.failed++;
        // sub and provider only: never the ciphertext.
        console.error(`cannot open ${row.provider} of ${row.sub} (sealed with key "${row.keyId}"): ${e.reason}`);
      }
    }
    if (rows.length < PAGE) break;
    const last = rows[rows.length - 1]!;
    after = { sub: last.sub, provider: last.provider };
  }
  return tally;
}

/**
 * Pending connect attempts: each holds a sealed PKCE verifier the callback
 * must open, so dropping a key during an attempt would spoil it. Expired ones
 * are deleted first; the rest (minutes' worth) are all read, and counted by
 * the key each is sealed with afterwards.
 */
async function reencryptAttempts(states: ConnectStatesStore, sealer: CredentialSealer): Promise<Tally & { usage: Record<string, number> }> {
  await states.sweep();
  const tally = { rewrapped: 0, changed: 0, failed: 0 };
  const usage: Record<string, number> = {};
  const count = (keyId: string) => (usage[keyId] = (usage[keyId] ?? 0) + 1);
  for (let after: string | undefined; ; ) {
    const page = await states.page({ limit: PAGE, ...(after !== undefined ? { after } : {}) });
    for (const state of page) {
      let keyId = 'unknown';
      try {
        keyId = sealer.keyIdOf(state.sealedVerifier);
        if (keyId === sealer.newestKeyId) {
          count(keyId);
          continue;
        }
        const bind = verifierBinding(state.sub, state.provider);
        const next = await sealer.seal(await sealer.open(state.sealedVerifier, bind), bind);
        // Not rewrapped: the callback took it meanwhile, so it is no longer pending.
        if (await states.rewrap(state, next)) {
          tally.rewrapped++;
          count(sealer.newestKeyId);
        } else tally.changed++;
      } catch (e) {
        if (!(e instanceof SealError)) throw e;
        tally.failed++;
        count(keyId);
        console.error(`cannot open the pending connect attempt of ${state.sub} to ${state.provider} (sealed with key "${keyId}"): ${e.reason}`);
      }
    }
    if (page.length < PAGE) break;
    after = page[page.length - 1]!.stateHash;
  }
  return { ...tally, usage };
}

const perKey = (usage: Record<string, number>, none: string) => {
  const entries = Object.entries(usage).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.length ? entries.map(([kid, n]) => `${kid} ${n}`).join(', ') : none;
};

async function reencrypt(): Promise<number> {
  const config = loadConfig(process.env);
  if (!config.connections) {
    console.error('error: CONNECTIONS_FILE and CONNECTION_KEYS are not set; use the same settings as the server');
    return 1;
  }
  const sealer = createSealer(config.connections.keys);
  const newest = sealer.newestKeyId;
  const db = await openDatabase(config.database);
  try {
    const store = connectionsStore(db, config.database.kind);
    const connections = await reencryptConnections(store, sealer);
    const attempts = await reencryptAttempts(connectStatesStore(db), sealer);
    console.log(`Re-encrypted ${plural(connections.rewrapped, 'connection', 'connections')} with key "${newest}"`);
    console.log(`Re-encrypted ${plural(attempts.rewrapped, 'pending connect attempt', 'pending connect attempts')} with key "${newest}"`);
    const changed = connections.changed + attempts.changed;
    const failed = connections.failed + attempts.failed;
    if (changed) console.log(`${changed} changed while this ran (a refresh, reconnect or connect callback wrote them); run it again to check them`);
    if (failed) console.log(`${failed} could not be opened (see above): the person must connect again, or add back the key they name`);
    console.log(`Connections per key: ${perKey(await store.keyUsage(), 'none stored')}`);
    console.log(`Pending connect attempts per key: ${perKey(attempts.usage, 'none pending')}`);
    return failed ? 1 : 0;
  } finally {
    await db.destroy();
  }
}

async function main(argv: string[], prog: string): Promise<number> {
  const USAGE = usage(prog);
  const [command, ...args] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return 0;
  }
  if (command !== 'reencrypt' || args.length) {
    console.error(USAGE);
    return 2;
  }
  return reencrypt();
}

export const connectionsCommand: CliCommand = {
  name: 'connections',
  summary: 'connected accounts upkeep: reencrypt with the newest key',
  usage,
  run: printingFailures(main),
};
