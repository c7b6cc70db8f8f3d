/**
 * Structured logs: one JSON object per line (`json`) or a readable line (`text`), with a
 * level filter. Debug channels of the internals use Node's `util.debuglog` under the names
 * listed in docs/operating.md (enable with NODE_DEBUG=actorserve-scheduler,...).
 */
import { debuglog } from 'node:util';

export type LogFormat = 'text' | 'json';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  readonly format?: LogFormat;
  readonly level?: LogLevel;
  readonly write?: (line: string) => void;
}

export class Logger {
  private readonly format: LogFormat;
  private readonly min: number;
  private readonly write: (line: string) => void;

  constructor(options: LoggerOptions = {}) {
    this.format = options.format ?? 'text';
    this.min = LEVELS[options.level ?? 'info'];
    this.write = options.write ?? ((line) => process.stderr.write(line + '\n'));
  }

  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (LEVELS[level] < this.min) return;
    const time = new Date().toISOString();
    if (this.format === 'json') {
      this.write(JSON.stringify({ time, level, msg, ...fields }));
      return;
    }
    const extra = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : v}`)
      .join(' ');
    this.write(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? ' ' + extra : ''}`);
  }

  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }
}

/** Debug channels of the internals (NODE_DEBUG=actorserve-scheduler,actorserve-actors). */
export const debugScheduler = debuglog('actorserve-scheduler');
export const debugActors = debuglog('actorserve-actors');
