/** `npm run bench:report`: render bench/results/latest.json again (after changing the report, without re-running). */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { writeReport } from './report.js';
import type { BenchResults } from './results.js';

const dir = fileURLToPath(new URL('./results/', import.meta.url));
const results = JSON.parse(await readFile(`${dir}latest.json`, 'utf8')) as BenchResults;
const { markdown, files } = await writeReport(results, dir);
console.log(markdown);
console.error(`written: ${files.join(', ')}`);
