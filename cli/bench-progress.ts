/**
 * Progress of a bench level on stderr while it runs: on a terminal one line rewritten in place
 * about 4 times a second; otherwise (a log file, CI) one line every PROGRESS_EVERY_MS of the
 * measured window, so a long level shows it is alive. wrk reports its counts only when a level
 * ends, so its line shows the time alone. `--json` turns the logged lines off (its
 * document goes to stdout; a terminal's live line on stderr is for the person watching).
 */

/** How often a progress line is written when stderr is not a terminal. */
export const PROGRESS_EVERY_MS = 5_000;

export interface LevelProgress {
  /** Absent with wrk, which gives its counts at the end of the level only. */
  readonly ok?: number;
  readonly errors?: number;
  /** Time into the measured window; 0 while warming up. */
  readonly elapsedMs: number;
}

export interface ProgressLine {
  /** What runLevel calls about 4 times a second. */
  readonly onProgress: (p: LevelProgress) => void;
  /** Clears the live line (terminal); call when the level ends. */
  readonly done: () => void;
}

function describe(concurrency: number, p: LevelProgress): string {
  const phase = p.elapsedMs === 0 ? 'warming up' : `${(p.elapsedMs / 1000).toFixed(1)} s`;
  if (p.ok === undefined) return `c=${concurrency}  ${phase}  (wrk: counts at the end of the level)`;
  const rate = p.elapsedMs > 0 ? (p.ok / p.elapsedMs) * 1000 : 0;
  return `c=${concurrency}  ${phase}  ${p.ok} ok  ${p.errors} errors  ${rate.toFixed(0)} req/s`;
}

export function progressLine(stderr: NodeJS.WritableStream, tty: boolean, concurrency: number): ProgressLine {
  if (tty) {
    return {
      onProgress: (p) => stderr.write(`\r\x1b[2K${describe(concurrency, p)}`),
      done: () => stderr.write('\r\x1b[2K'),
    };
  }
  let next = PROGRESS_EVERY_MS;
  return {
    onProgress: (p) => {
      if (p.elapsedMs < next) return;
      next = (Math.floor(p.elapsedMs / PROGRESS_EVERY_MS) + 1) * PROGRESS_EVERY_MS;
      stderr.write(`${describe(concurrency, p)}\n`);
    },
    done: () => undefined,
  };
}
