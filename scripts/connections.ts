/**
 * Connected accounts upkeep: `npm run connections -- reencrypt`.
 * Exit codes: 0 done, 1 failure (or rows that could not be opened), 2 usage error.
 *
 * Key rotation: put a new key FIRST in CONNECTION_KEYS (keep the old ones),
 * restart the servers, run `reencrypt`, and drop an old key only once the
 * per-key counts it prints no longer name it.
 */
import 'dotenv/config';
import { loadConfig } from '../src/config/config.js';
import { createSealer, SealError } from '../src/connections/sealing.js';
import { connectionsStore } from '../src/store/connectionsStore.js';
import { openDatabase } from '../src/store/database.js';

const USAGE = `usage: npm run connections -- <command>
  reencrypt   seal every stored connection with the newest key of
              CONNECTION_KEYS (the first); rows already sealed with it
              are left alone, so running it again is harmless`;

/** Rows read per query: the table is walked in pages, never loaded whole. */
const PAGE = 100;

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
    let rewrapped = 0;
    let changed = 0;
    let failed = 0;
    let after: { sub: string; provider: string } | undefined;
    for (;;) {
      const rows = await store.listNotSealedWith(newest, { limit: PAGE, ...(after ? { after } : {}) });
      for (const row of rows) {
        const bind = { sub: row.sub, provider: row.provider };
        try {
          const next = await sealer.seal(await sealer.open(row.sealed, bind), bind);
          if (await store.rewrap(row, { sealed: next, keyId: newest })) rewrapped++;
          else changed++;
        } catch (e) {
          if (!(e instanceof SealError)) throw e;
          failed++;
          // sub and provider only: never the ciphertext.
          console.error(`cannot open ${row.provider} of ${row.sub} (sealed with key "${row.keyId}"): ${e.reason}`);
        }
      }
      if (rows.length < PAGE) break;
      const last = rows[rows.length - 1]!;
      after = { sub: last.sub, provider: last.provider };
    }
    console.log(`Re-encrypted ${rewrapped} connection${rewrapped === 1 ? '' : 's'} with key "${newest}"`);
    if (changed) console.log(`${changed} changed while this ran (a refresh or reconnect wrote them); run it again to check them`);
    if (failed) console.log(`${failed} could not be opened (see above): the person must connect again, or add back the key they name`);
    const usage = Object.entries(await store.keyUsage());
    console.log(`Connections per key: ${usage.length ? usage.map(([kid, n]) => `${kid} ${n}`).join(', ') : 'none stored'}`);
    return failed ? 1 : 0;
  } finally {
    await db.destroy();
  }
}

async function main(argv: string[]): Promise<number> {
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    // Configuration or database failures: one readable message, no stack.
    console.error(`error: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
