import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';

/**
 * Pin a process's main thread to one CPU with util-linux `taskset`, so the
 * load generator and the server under test stop trading cores. Only the main
 * thread: V8's GC helpers stay free to use the other core (pinning them too
 * was slower and noisier here). Returns false (and changes nothing) where
 * that is not possible.
 */
export function pinToCpu(pid: number, cpu: number): boolean {
  if (process.platform !== 'linux' || cpus().length < 2 || process.env.BENCH_PIN === 'off') return false;
  const r = spawnSync('taskset', ['-cp', String(cpu), String(pid)], { stdio: 'ignore' });
  return r.status === 0;
}
