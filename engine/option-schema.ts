/**
 * Option schemas. Each option surface (ServableStartConfig, the REST and gRPC server options,
 * the `actorserve serve` config file and its flags) declares its fields once, next to its
 * owner: kind, limits, default and a one-line doc. Everything else is derived from that one
 * declaration, so nothing can drift:
 *
 * - the TypeScript option types (`OptionsIn` what a caller passes, `OptionsOut` after defaults);
 * - the validator, `checkOptions`, which refuses unknown keys naming the closest known one
 *   (`unknown option 'maxMsgMBSize' (did you mean 'maxMsgMbSize'?)`) and words every limit the
 *   same way wherever it is hit (library call, config file, CLI flag);
 * - text parsing for CLI flags (`parseText`) and the defaults and docs --help prints.
 *
 *   const OPTIONS = { closeTimeoutMs: number({ min: 0, default: 10_000, doc: 'how long close() waits' }) };
 *   type Options = OptionsIn<typeof OPTIONS>;
 *   const settings = checkOptions(OPTIONS, options, invalidArgument('RESTful server options'));
 */
import { ServingError } from './errors.js';

// ---------------------------------------------------------------------------------------------
// Fields

interface FieldBase<In, Out> {
  /** One line for --help and docs. */
  readonly doc: string;
  readonly required?: boolean;
  /**
   * Whether null is accepted: 'as-absent' = null means "not given" (MindSpore's None: the default
   * applies); 'kept' = null is a value of its own (`rest: null` turns REST off).
   */
  readonly nullable?: 'as-absent' | 'kept';
  readonly default?: In;
  /** Type-level only (never set): what the field accepts and what checking yields. */
  readonly __in?: In;
  readonly __out?: Out;
}

export interface NumberField extends FieldBase<number, number> {
  readonly kind: 'number';
  readonly integer?: boolean;
  readonly min?: number;
  /** The minimum itself is refused: (min, max]. */
  readonly exclusiveMin?: boolean;
  readonly max?: number;
}
/** A non-empty string; `isPath` ones are resolved against a config file's folder. */
export interface StringField extends FieldBase<string, string> {
  readonly kind: 'string';
  readonly isPath?: boolean;
}
export interface EnumField<V extends string = string, I extends string = V> extends FieldBase<I, V> {
  readonly kind: 'enum';
  readonly values: readonly V[];
  /** Other spellings accepted for a value (`gpu` for `cuda`). */
  readonly aliases?: Readonly<Record<string, V>>;
  readonly ignoreCase?: boolean;
}
export interface BooleanField extends FieldBase<boolean, boolean> {
  readonly kind: 'boolean';
}
export interface BytesField extends FieldBase<Uint8Array, Uint8Array> {
  readonly kind: 'bytes';
  readonly lengths: readonly number[];
}
/** A string or a finite number (values of a pass-through map such as grpc-js channel options). */
export interface ScalarField extends FieldBase<string | number, string | number> {
  readonly kind: 'scalar';
}
/** A function the caller supplies (a hook); only its being a function is checked. */
export interface FunctionField<T> extends FieldBase<T, T> {
  readonly kind: 'function';
}
/** A value of a shape of its own (`'zeros'` or `{ file }`): `check` says whether it fits; `requirement` words what fits. */
export interface CustomField<T> extends FieldBase<T, T> {
  readonly kind: 'custom';
  readonly check: (value: unknown) => value is T;
  /** Reads after the value's name: "must be 'zeros' or { file: 'name.npy' }". */
  readonly requirement: string;
}
export interface ListField<F extends Field = Field, I = readonly InOf<F>[]> extends FieldBase<I, readonly OutOf<F>[]> {
  readonly kind: 'list';
  readonly of: F;
  /** A lone item stands for a list of one (`deviceIds: 3`). */
  readonly single?: boolean;
  readonly nonEmpty?: boolean;
  readonly unique?: boolean;
  /** What one item is called in messages ("id": "repeats an id: 0, 0"). */
  readonly item?: string;
}
export interface ObjectField<S extends Fields = Fields> extends FieldBase<OptionsIn<S>, OptionsOut<S>> {
  readonly kind: 'object';
  readonly fields: S;
}
/** An object with free keys (model file names) and values of one kind. */
export interface MapField<F extends Field = Field> extends FieldBase<Readonly<Record<string, InOf<F>>>, Readonly<Record<string, OutOf<F>>>> {
  readonly kind: 'map';
  readonly of: F;
}

export type Field =
  | NumberField
  | StringField
  | EnumField<string, string>
  | BooleanField
  | BytesField
  | ScalarField
  | FunctionField<unknown>
  | CustomField<unknown>
  | ListField<Field, unknown>
  | ObjectField<Fields>
  | MapField<Field>;
export type Fields = { readonly [key: string]: Field };

// Field constructors. Their `const` type parameters keep `required: true`, `nullable` and the
// presence of a `default` in the field's type, which is what OptionsIn/OptionsOut read.
type Common = Pick<FieldBase<unknown, unknown>, 'doc' | 'required' | 'nullable'>;
export const number = <const O extends Common & Omit<NumberField, 'kind' | '__in' | '__out'>>(o: O): NumberField & O => ({ kind: 'number', ...o });
export const integer = <const O extends Common & Omit<NumberField, 'kind' | 'integer' | '__in' | '__out'>>(o: O): NumberField & O & { integer: true } => ({
  kind: 'number',
  integer: true,
  ...o,
});
export const string = <const O extends Common & { default?: string; isPath?: boolean }>(o: O): StringField & O => ({ kind: 'string', ...o });
export const path = <const O extends Common & { default?: string }>(o: O): StringField & O => ({ kind: 'string', isPath: true, ...o });
export const boolean = <const O extends Common & { default?: boolean }>(o: O): BooleanField & O => ({ kind: 'boolean', ...o });
export const bytes = <const O extends Common & { lengths: readonly number[] }>(o: O): BytesField & O => ({ kind: 'bytes', ...o });
export const scalar = <const O extends Common>(o: O): ScalarField & O => ({ kind: 'scalar', ...o });
export const fn = <T>() => <const O extends Common>(o: O): FunctionField<T> & O => ({ kind: 'function', ...o });
export const oneOf = <const V extends string, I extends string = V>() =>
  <const O extends Common & { values: readonly V[]; default?: I; aliases?: Readonly<Record<string, V>>; ignoreCase?: boolean }>(o: O): EnumField<V, I> & O => ({ kind: 'enum', ...o });
export const custom = <T>() => <const O extends Common & { check: (value: unknown) => value is T; requirement: string; default?: T }>(o: O): CustomField<T> & O => ({
  kind: 'custom',
  ...o,
});
export const list = <F extends Field, const O extends Common & { single?: boolean; nonEmpty?: boolean; unique?: boolean; item?: string; default?: readonly InOf<F>[] }>(
  of: F,
  o: O,
  // (cast: TS cannot check an object literal against the conditional accepted type)
): ListField<F, O extends { single: true } ? InOf<F> | readonly InOf<F>[] : readonly InOf<F>[]> & O => ({ kind: 'list', of, ...o }) as never;
export const object = <S extends Fields, const O extends Common & { default?: OptionsIn<S> }>(fields: S, o: O): ObjectField<S> & O => ({ kind: 'object', fields, ...o });
export const map = <F extends Field, const O extends Common & { default?: Readonly<Record<string, InOf<F>>> }>(of: F, o: O): MapField<F> & O => ({ kind: 'map', of, ...o });

/** A schema without some of its fields (a surface built from another's, minus what it names otherwise). */
export function omitFields<S extends Fields, K extends keyof S & string>(fields: S, ...keys: readonly K[]): Omit<S, K> {
  return Object.fromEntries(Object.entries(fields).filter(([key]) => !(keys as readonly string[]).includes(key))) as Omit<S, K>;
}

// ---------------------------------------------------------------------------------------------
// Types derived from a schema

export type InOf<F> = F extends { readonly __in?: infer I } ? I : never;
export type OutOf<F> = F extends { readonly __out?: infer O } ? O : never;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
/** `true` when A and B are the same type (a hand-written option interface against its schema's `OptionsIn`). */
export type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type RequiredKeys<S> = { [K in keyof S]: S[K] extends { required: true } ? K : never }[keyof S];
type DefaultedKeys<S> = { [K in keyof S]: S[K] extends { default: unknown } ? K : never }[keyof S];
type NullIn<F> = F extends { nullable: string } ? null : never;
type NullOut<F> = F extends { nullable: 'kept' } ? null : never;

/** What a caller may pass: required keys, then optional ones (null where the field allows it). */
export type OptionsIn<S> = Simplify<
  { -readonly [K in RequiredKeys<S>]: InOf<S[K]> } & { -readonly [K in Exclude<keyof S, RequiredKeys<S>>]?: InOf<S[K]> | NullIn<S[K]> }
>;
/** What `checkOptions` yields: defaults filled in; a key with none stays absent when not given. */
export type OptionsOut<S> = Simplify<
  { readonly [K in RequiredKeys<S> | DefaultedKeys<S>]: OutOf<S[K]> | NullOut<S[K]> } & {
    readonly [K in Exclude<keyof S, RequiredKeys<S> | DefaultedKeys<S>>]?: OutOf<S[K]> | NullOut<S[K]>;
  }
>;

// ---------------------------------------------------------------------------------------------
// Checking

/** One step of the way to a bad value: a key, a list index, or a key of a map. */
export type PathStep = string | number | { readonly entry: string };

export type OptionProblem =
  | { readonly kind: 'unknown'; readonly path: readonly PathStep[]; readonly key: string; readonly suggestion: string | undefined; readonly known: readonly string[] }
  | { readonly kind: 'missing'; readonly path: readonly PathStep[]; readonly key: string }
  /** `message` reads after the value's name: "must be an integer in [1, 256], got 0". */
  | { readonly kind: 'invalid'; readonly path: readonly PathStep[]; readonly message: string };

/** Turns a problem into the surface's own error and throws it. */
export type OptionFailure = (problem: OptionProblem) => never;

/**
 * Checks `input` against `fields` and returns it with defaults filled in and values normalised
 * (a lone item as a list, enum aliases resolved). Calls `fail` with the first problem: an
 * unknown key (with the closest known key), a missing required key, or a value outside its
 * kind or limits.
 */
export function checkOptions<S extends Fields>(fields: S, input: unknown, fail: OptionFailure): OptionsOut<S> {
  return checkObject(fields, input ?? {}, [], fail, { defaults: true, resolvePath: undefined }) as OptionsOut<S>;
}

/**
 * The same check for a config file: absent keys stay absent (defaults are applied later, once,
 * after command-line flags are merged in) and `path()` values go through `resolvePath`.
 */
export function checkFileOptions<S extends Fields>(fields: S, input: unknown, fail: OptionFailure, resolvePath: (p: string) => string): OptionsIn<S> {
  return checkObject(fields, input ?? {}, [], fail, { defaults: false, resolvePath }) as OptionsIn<S>;
}

/** Checks one value against one field (a CLI flag's value, say); `path` names it in the problem. */
export function checkValue<F extends Field>(field: F, value: unknown, path: readonly PathStep[], fail: OptionFailure): OutOf<F> {
  return checkField(field, value, path, fail, { defaults: true, resolvePath: undefined }) as OutOf<F>;
}

interface Mode {
  readonly defaults: boolean;
  readonly resolvePath: ((p: string) => string) | undefined;
}

function checkObject(fields: Fields, value: unknown, at: readonly PathStep[], fail: OptionFailure, mode: Mode): Record<string, unknown> {
  if (!isPlainObject(value)) return fail({ kind: 'invalid', path: at, message: `must be an object, got ${show(value)}` });
  const known = Object.keys(fields);
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(fields, key)) fail({ kind: 'unknown', path: at, key, suggestion: closest(key, known), known });
  }
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(fields)) {
    const given = value[key] === null && field.nullable === 'as-absent' ? undefined : value[key];
    if (given === undefined) {
      if (field.required) fail({ kind: 'missing', path: at, key });
      if (mode.defaults && field.default !== undefined) out[key] = checkField(field, field.default, [...at, key], fail, mode);
      continue;
    }
    out[key] = checkField(field, given, [...at, key], fail, mode);
  }
  return out;
}

function checkField(field: Field, value: unknown, at: readonly PathStep[], fail: OptionFailure, mode: Mode): unknown {
  const invalid = (message: string): never => fail({ kind: 'invalid', path: at, message });
  if (value === null) return field.nullable === 'kept' ? null : invalid(`${requirement(field)}, got null`);
  switch (field.kind) {
    case 'number':
      return isNumberOf(field, value) ? value : invalid(`${requirement(field)}, got ${show(value)}`);
    case 'string':
      if (typeof value !== 'string' || value === '') return invalid(`${requirement(field)}, got ${show(value)}`);
      return field.isPath && mode.resolvePath ? mode.resolvePath(value) : value;
    case 'enum': {
      if (typeof value !== 'string') return invalid(`${requirement(field)}, got ${show(value)}`);
      if (value === '') return invalid('must not be empty');
      const canonical = enumValue(field, value);
      return canonical ?? invalid(`'${value}' is not supported; use ${either(field.values)}`);
    }
    case 'boolean':
      return typeof value === 'boolean' ? value : invalid(`${requirement(field)}, got ${show(value)}`);
    case 'bytes':
      return value instanceof Uint8Array && field.lengths.includes(value.byteLength) ? value : invalid(requirement(field));
    case 'scalar':
      return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value)) ? value : invalid(`${requirement(field)}, got ${show(value)}`);
    case 'function':
      return typeof value === 'function' ? value : invalid(`${requirement(field)}, got ${show(value)}`);
    case 'custom':
      return field.check(value) ? value : invalid(`${requirement(field)}, got ${show(value)}`);
    case 'list': {
      const items = field.single && !Array.isArray(value) ? [value] : value;
      if (!Array.isArray(items)) return invalid(`${requirement(field)}, got ${show(value)}`);
      // numbers are checked as a whole ("must be integers >= 0, got [0, -1]"); objects item by item
      const of = field.of;
      if (of.kind === 'number' && !items.every((v) => isNumberOf(of, v))) return invalid(`${requirement(field)}, got ${show(items)}`);
      const out = items.map((v, i) => checkField(of, v, [...at, i], fail, mode));
      if (field.nonEmpty && out.length === 0) return invalid(`must name at least one ${field.item ?? 'value'}`);
      if (field.unique && new Set(out).size !== out.length) return invalid(`repeats ${article(field.item ?? 'value')}: ${out.join(', ')}`);
      return out;
    }
    case 'object':
      return checkObject(field.fields, value, at, fail, mode);
    case 'map': {
      if (!isPlainObject(value)) return invalid(`must be an object, got ${show(value)}`);
      const out: Record<string, unknown> = {};
      for (const [key, v] of Object.entries(value)) out[key] = checkField(field.of, v, [...at, { entry: key }], fail, mode);
      return out;
    }
  }
}

function isNumberOf(f: NumberField, v: unknown): v is number {
  if (typeof v !== 'number' || !Number.isFinite(v) || (f.integer && !Number.isSafeInteger(v))) return false;
  if (f.min !== undefined && (f.exclusiveMin ? v <= f.min : v < f.min)) return false;
  return f.max === undefined || v <= f.max;
}

function enumValue(f: EnumField, v: string): string | undefined {
  const same = (a: string, b: string): boolean => (f.ignoreCase ? a.toLowerCase() === b.toLowerCase() : a === b);
  const alias = Object.entries(f.aliases ?? {}).find(([k]) => same(k, v));
  return f.values.find((value) => same(value, v)) ?? alias?.[1];
}

/** "must be an integer in [1, 256]", worded from the field alone, so every surface says the same. */
export function requirement(f: Field): string {
  switch (f.kind) {
    case 'number':
      return `must be ${numberKind(f, false)}`;
    case 'string':
      return 'must be a non-empty string';
    case 'enum':
      return `must be ${either(f.values)}`;
    case 'boolean':
      return 'must be true or false';
    case 'bytes':
      return `must be ${either(f.lengths.map(String), false)} bytes`;
    case 'scalar':
      return 'must be a string or a finite number';
    case 'function':
      return 'must be a function';
    case 'custom':
      return f.requirement;
    case 'list':
      return f.of.kind === 'number' ? `must be ${numberKind(f.of, true)}` : 'must be a list';
    case 'object':
    case 'map':
      return 'must be an object';
  }
}

function numberKind(f: NumberField, plural: boolean): string {
  const what = f.integer ? (plural ? 'integers' : 'an integer') : plural ? 'numbers' : 'a number';
  const { min, max } = f;
  if (min !== undefined && max !== undefined) return `${what} in ${f.exclusiveMin ? '(' : '['}${min}, ${max}]`;
  if (min === 0 && f.exclusiveMin && !f.integer && !plural) return 'a positive number';
  if (min !== undefined) return `${what} ${f.exclusiveMin ? '>' : '>='} ${min}`;
  if (max !== undefined) return `${what} <= ${max}`;
  return what;
}

const either = (values: readonly string[], quote = true): string => {
  const q = values.map((v) => (quote ? `'${v}'` : v));
  return q.length <= 1 ? (q[0] ?? '') : `${q.slice(0, -1).join(', ')} or ${q.at(-1)}`;
};
const article = (noun: string): string => `${/^[aeiou]/i.test(noun) ? 'an' : 'a'} ${noun}`;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

function show(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  if (ArrayBuffer.isView(v)) return `${v.byteLength} bytes`;
  if (typeof v === 'object' && v !== null) return 'an object';
  return String(v);
}

/** The known key closest to `word` by edit distance, when close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(above + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

// ---------------------------------------------------------------------------------------------
// Messages

/** `servables[0].deviceIds`, `batching['add.onnx'].maxBatchSize`. */
export function pathText(path: readonly PathStep[]): string {
  return path
    .map((s, i) => (typeof s === 'number' ? `[${s}]` : typeof s === 'object' ? `['${s.entry}']` : i === 0 ? s : `.${s}`))
    .join('');
}

const hint = (p: Extract<OptionProblem, { kind: 'unknown' }>): string =>
  p.suggestion ? ` (did you mean '${p.suggestion}'?)` : ` (known keys: ${p.known.join(', ')})`;

/**
 * A library call's wording: `RESTful server options: unknown option 'maxMsgMBSize' (did you
 * mean 'maxMsgMbSize'?)`, `ServableStartConfig: intraOpThreads must be an integer in [1, 256], got 0`.
 */
export function libraryMessage(where: string, p: OptionProblem): string {
  const subject = pathText(p.path);
  switch (p.kind) {
    case 'unknown':
      return subject ? `${where}: ${subject} has an unknown key '${p.key}'${hint(p)}` : `${where}: unknown option '${p.key}'${hint(p)}`;
    case 'missing':
      return `${where}: ${pathText([...p.path, p.key])} is required`;
    case 'invalid':
      return `${where}: ${subject} ${p.message}`;
  }
}

/** A file's wording, where the path leads: `config.servables[0]: unknown key 'deviceIdz' (did you mean 'deviceIds'?)`. */
export function fileMessage(root: string, p: OptionProblem): string {
  const at = root + (p.path.length > 0 && typeof p.path[0] === 'string' ? '.' : '') + pathText(p.path);
  switch (p.kind) {
    case 'unknown':
      return `${at}: unknown key '${p.key}'${hint(p)}`;
    case 'missing':
      return `${at}: missing required key '${p.key}'`;
    case 'invalid':
      return `${at}: ${p.message}`;
  }
}

/** The failure of a library surface: an E_INVALID_ARGUMENT ServingError worded by `libraryMessage`. */
export function invalidArgument(where: string): OptionFailure {
  return (p) => {
    throw new ServingError('E_INVALID_ARGUMENT', libraryMessage(where, p));
  };
}

// ---------------------------------------------------------------------------------------------
/** An unknown command-line flag, with the closest known one: `Unknown option '--max-msg-mbs' (did you mean '--max-msg-mb'?)`. */
export function unknownFlagMessage(flag: string, known: readonly string[]): string {
  const guess = closest(flag.replace(/^-+/, ''), known);
  return `Unknown option '${flag}'${guess ? ` (did you mean '--${guess}'?)` : ''}`;
}

// Text (CLI flags)

/**
 * A field's value as written on a command line: numbers parsed, lists split at commas. Text
 * that is not a number stays text, so the check reports what was typed (`got 'soon'`).
 */
export function parseText(field: Field, text: string): unknown {
  switch (field.kind) {
    case 'number': {
      const n = Number(text);
      return text.trim() !== '' && !Number.isNaN(n) ? n : text;
    }
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : text;
    case 'list':
      return text.split(',').map((s) => parseText(field.of, s.trim()));
    default:
      return text;
  }
}

/** A default as --help and docs write it (`0,1`, `30000`, `text`), or undefined when there is none. */
export function defaultText(field: Field): string | undefined {
  const d: unknown = field.default;
  if (Array.isArray(d)) return d.join(',');
  return typeof d === 'number' || typeof d === 'string' || typeof d === 'boolean' ? String(d) : undefined;
}
