/** Command-line argument helpers shared by the commands. */

/** A user error in the command line: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {}

export function intList(value: string, flag: string): number[] {
  const list = value.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 0)) throw new UsageError(`${flag} takes integers >= 0 separated by commas`);
  return list;
}

export function positiveNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`${flag} takes a positive number, got '${value}'`);
  return n;
}
