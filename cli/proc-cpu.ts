/**
 * CPU time a process has used, from Linux's /proc/<pid>/stat (utime + stime: all its threads,
 * live and ended). The load generators and the perf suite read it before and after a
 * measurement to give the CPU cost per request of the server and of the load generator.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of the stat fields (USER_HZ, 100 on every Linux build in use). */
const USER_HZ = 100;

/** CPU seconds (user + system) of a /proc/<pid>/stat line; undefined when it cannot be read. */
export function statCpuSeconds(stat: string): number | undefined {
  // the command name (field 2) is in parentheses and may hold spaces: count from the last ')'
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = stat.slice(close + 2).split(' ');
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / USER_HZ : undefined;
}

/** CPU seconds a process has used so far; undefined off Linux or when it is gone. */
export function processCpuSeconds(pid: number | 'self'): number | undefined {
  try {
    return statCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}
