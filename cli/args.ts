/**
 * Command-line argument helpers shared by the commands, and flags derived from option schemas
 * (engine/option-schema.ts): a flag names the schema field it sets, and takes its value kind,
 * limits, default and --help line from it, so `--max-msg-mb 513` is refused in the same words
 * as `startRestfulServer(..., { maxMsgMbSize: 513 })`.
 */
import path from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { type Field, type OutOf, checkValue, defaultText, parseText, unknownFlagMessage } from '../engine/option-schema.js';

/** A user error in the command line: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {}

export interface FlagSpec {
  /** The schema field the flag's value is checked against; none = an on/off switch. */
  readonly field?: Field;
  /** The value's placeholder in --help (`N`, `ADDR`, `0,1`). */
  readonly metavar?: string;
  /** --help text when the field's doc does not fit the flag (it sets more, or less, than the field). */
  readonly doc?: string;
  /** --help default when the field's own is not it ("every servable folder"). */
  readonly defaultText?: string;
  readonly short?: string;
}
export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

/** The parsed flags: a switch is a boolean, a flag with a field its checked value; absent = undefined. */
export type FlagValues<F extends FlagSpecs> = {
  readonly [K in keyof F]?: F[K] extends { field: infer Fd } ? (Fd extends { kind: 'boolean' } ? boolean : OutOf<Fd>) : boolean;
};

const isSwitch = (spec: FlagSpec): boolean => spec.field === undefined || spec.field.kind === 'boolean';

/**
 * node:util's parseArgs in strict mode, with an unknown flag refused as a UsageError naming the
 * closest known flag (every command parses its flags through this).
 */
export function parseArgsStrict<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    const unknown = (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-[^']*)'/.exec((err as Error).message)?.[1] : undefined;
    if (unknown === undefined) throw err;
    throw new UsageError(unknownFlagMessage(unknown, Object.keys(config.options ?? {})));
  }
}

/**
 * Parses `argv` against `specs`: an unknown flag is refused with the closest known one, each
 * value is checked against its field (paths resolved against the working directory).
 */
export function parseFlags<F extends FlagSpecs>(specs: F, argv: readonly string[]): FlagValues<F> {
  const options = Object.fromEntries(
    Object.entries(specs).map(([name, spec]) => [name, { type: isSwitch(spec) ? ('boolean' as const) : ('string' as const), ...(spec.short ? { short: spec.short } : {}) }]),
  );
  const { values } = parseArgsStrict({ args: [...argv], options, strict: true, allowPositionals: false }) as { values: Record<string, string | boolean | undefined> };
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const given = values[name];
    if (given === undefined) continue;
    if (typeof given === 'boolean' || spec.field === undefined) {
      out[name] = given;
      continue;
    }
    const field = spec.field;
    const value = checkValue(field, parseText(field, given), [], (p) => {
      throw new UsageError(`--${name} ${p.kind === 'invalid' ? p.message : 'is not valid'}`);
    });
    out[name] = field.kind === 'string' && field.isPath ? path.resolve(value as string) : value;
  }
  return out as FlagValues<F>;
}

/** The "Options:" lines of --help, from each flag's field doc and default. */
export function flagHelp(specs: FlagSpecs): string {
  return Object.entries(specs)
    .map(([name, spec]) => {
      const head = `${spec.short ? `-${spec.short}, ` : ''}--${name}${spec.metavar ? ` ${spec.metavar}` : ''}`;
      const fallback = spec.defaultText ?? (spec.field ? defaultText(spec.field) : undefined);
      const doc = `${spec.doc ?? spec.field?.doc ?? ''}${fallback !== undefined ? ` (default: ${fallback})` : ''}`;
      return `  ${head.padEnd(23)} ${doc}\n`;
    })
    .join('');
}
