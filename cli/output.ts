/**
 * What the CLI prints and how: where output goes ({@link CliIo}), names
 * made safe for a terminal and timestamped log lines (sizes and counts:
 * cli/units.ts; the progress display: cli/progress.ts).
 *
 * @module
 */

import { environmentFault } from "../lib/errors.ts";
import { escapeChar } from "../lib/escape.ts";
import { writeAll } from "../lib/io/copy.ts";

/** Where the command prints. */
export interface CliIo {
  /** Normal output (summaries, `list`, `cat`). */
  stdout: (text: string) => void;
  /** Warnings and errors. */
  stderr: (text: string) => void;
  /** Raw bytes to standard output (`cat`). */
  writeBytes: (bytes: Uint8Array) => Promise<void>;
  /** Whether standard error is a terminal (progress bars). */
  isTerminal: boolean;
  /**
   * Whether standard output is a terminal too: its lines then share the screen with the
   * progress bar, which is cleared for them. @default false
   */
  stdoutIsTerminal?: boolean;
  /**
   * Write text to standard error as it is, no newline added: the progress bar's drawing. On a
   * terminal, progress is drawn as a bar only when this is given (else as plain lines).
   */
  writeStderr?: (text: string) => void;
  /** Width of the terminal in columns (the bar is cut to it). @default 80 */
  terminalColumns?: () => number;
  /**
   * Milliseconds between plain progress lines when standard error is not a terminal: for
   * tests (cli/progress.ts). @default 10000
   */
  progressInterval?: number;
}

const ENCODER = new TextEncoder();

/** The process's own stdout and stderr. */
export const DEFAULT_IO: CliIo = {
  stdout: (text) => {
    // Not console.log: it drops a write into a closed pipe silently, and `list | head` would
    // then print the whole listing into nothing.
    try {
      let bytes = ENCODER.encode(text + "\n");
      while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
    } catch (error) {
      throw stdoutFault(error);
    }
  },
  stderr: (text) => {
    try {
      console.error(text);
    } catch { /* nowhere left to report it */ }
  },
  writeBytes: async (bytes) => {
    try {
      await writeAll(Deno.stdout, bytes);
    } catch (error) {
      throw stdoutFault(error);
    }
  },
  isTerminal: Deno.stderr.isTerminal(),
  stdoutIsTerminal: Deno.stdout.isTerminal(),
  writeStderr: (text) => {
    try {
      let bytes = ENCODER.encode(text);
      while (bytes.length > 0) bytes = bytes.subarray(Deno.stderr.writeSync(bytes));
    } catch { /* nowhere left to draw */ }
  },
  terminalColumns: () => {
    try {
      return Deno.consoleSize().columns || 80;
    } catch {
      return 80;
    }
  },
};

/**
 * Standard output went away (`ctnr list | head`): the command stops quietly, as `cat` does,
 * with 141 (128 + SIGPIPE).
 */
export class StdoutClosed extends Error {
  constructor() {
    super("standard output closed");
    this.name = "StdoutClosed";
  }
}

/** A failed write to standard output: closed (EPIPE), else one line naming the cause. */
function stdoutFault(error: unknown): unknown {
  if (error instanceof Deno.errors.BrokenPipe || (error as { code?: string })?.code === "EPIPE") {
    return new StdoutClosed();
  }
  return environmentFault(error, "Cannot write to standard output", "nothing else was lost");
}

/** A log function: prints `message` with a timestamp when the verbosity reaches `level`. */
export type Log = (level: number, message: string) => void;

/**
 * A logger that prints to stdout with a local timestamp, as the original tools do.
 *
 * @param io where to print
 * @param verbosity how many `-v` were given
 * @returns the log function
 */
export function logger(io: CliIo, verbosity: number): Log {
  return (level: number, message: string) => {
    if (verbosity < level) return;
    const now = new Date();
    const pad = (n: number) => String(n).padStart(2, "0");
    const stamp = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ` +
      `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
    io.stdout(`[${stamp}] ${message}`);
  };
}

/** A name fit for a terminal line: control characters and backslashes escaped (`\n`, `\x01`). */
export function printable(name: string): string {
  return name.replace(UNPRINTABLE_OR_BACKSLASH, escapeChar);
}

/**
 * A message fit for one terminal line, escaped as names are ({@link printable}: `\n`, `\x1b`,
 * `\\`): a name inside it (a relpath holding a newline) cannot start a line of its own, so
 * every error and warning is one line starting with `ctnr:`.
 */
export function printableMessage(message: string): string {
  return printable(message);
}

// C0 and C1 controls (line breaks included), DEL, line/paragraph separators, bidirectional
// overrides and isolates, and the backslash that starts an escape.
// deno-lint-ignore no-control-regex
const UNPRINTABLE_OR_BACKSLASH = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\\]/g;
