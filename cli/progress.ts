/**
 * The progress display of `create`, `extract` and `verify` (`--progress`, or `--tqdm` as the
 * original tools spell it), on standard error:
 *
 * - on a terminal, one bar line at the bottom of the screen, redrawn up to ten times a second:
 *   the phase, a bar and the percent done when the total is known (else a counter), files and
 *   bytes done of their totals, the rate, the time elapsed, the time left, the current name.
 *   Every line the command prints through {@link ProgressDisplay.io} goes above the bar: the
 *   bar is cleared, the line printed, the bar drawn again below it. When the run ends the last
 *   state of the bar stays on screen, once, and what follows is printed below it.
 * - elsewhere (standard error a file or a pipe), one plain line every 10 seconds and one at
 *   the end, with no control codes: `ctnr: progress: writing 42% | 420/1000 files | ...`.
 *
 * No npm package draws it. cli-progress (used before) was checked and does not serve:
 * `MultiBar.log` holds a line until the next redraw and writes it to the bar's stream (a line
 * meant for standard output lands on standard error; a long line overwrites itself, its issue
 * #142), `SingleBar.stop` puts the cursor back where the bar started (once lines have scrolled,
 * the summary is drawn over older lines), and with no terminal it prints the bar at the start
 * and a blank line after each one (`MultiBar`). What it would still do here, the bar's
 * characters, is one line (`drawBar`), not worth a dependency and its four.
 *
 * @module
 */

import type { CreatePhase, CreateProgress, ExtractProgress } from "../mod.ts";
import type { Flag } from "./flags.ts";
import { type CliIo, printable } from "./output.ts";

/** The `--progress` flag of `create`, `extract` and `verify` (`--tqdm` is its original name). */
export const PROGRESS = {
  name: "progress",
  type: "boolean",
  origin: "ctnr",
  help: "show progress on stderr: a bar on a terminal (lines print above it),\n" +
    "else a plain line every 10 s and one at the end",
} as const satisfies Flag;

/** Milliseconds between redraws of the bar on a terminal. */
const REDRAW_EVERY = 100;
/** Milliseconds between plain progress lines when standard error is not a terminal. */
export const LINE_EVERY = 10_000;
/** Milliseconds of recent progress the rate (and so the time left) is measured over. */
const RATE_WINDOW = 10_000;
/** Width of the bar itself, in characters. */
const BAR_SIZE = 20;

/** What a phase shows. */
export interface PhaseShape {
  /** Word after the count (`files`, `entries`, `files found`); no count shown without it. */
  unit?: string;
  /** Show the bytes done (`index ` is put before them while planning). */
  bytes?: boolean;
  /** Word put before the bytes. */
  bytesLabel?: string;
  /** Count to reach (percent and time left from it when the bytes total is not known). */
  totalCount?: number;
  /** Bytes to reach (percent and time left from it when known). */
  totalBytes?: number;
}

/**
 * A progress display: told each phase and the counts as they move, stopped at the end (also by
 * `using`).
 */
/** The display on the screen now, if any: a second signal ends it before the process exits. */
let shown: ProgressDisplay | undefined;

/**
 * End the display on the screen, if any, as {@link ProgressDisplay.stop} does: its last state
 * kept as a line (a plain line off a terminal), so what is printed next starts on a line of its
 * own. For a run that exits at once (a second Ctrl-C).
 */
export function stopShownProgress(): void {
  shown?.stop();
}

export class ProgressDisplay implements Disposable {
  /** Print through this: its lines go above the bar (the same {@link CliIo} otherwise). */
  readonly io: CliIo;
  #base: CliIo;
  #terminal: boolean;
  #timer: ReturnType<typeof setInterval>;
  #startTime: number;
  #phase: string | undefined;
  #shape: PhaseShape = {};
  #phaseStart = 0;
  #count = 0;
  #bytes = 0;
  #current = "";
  /** Samples of the time, the count and the bytes for the rates: rings, reused. */
  #sampleTimes = new Float64Array(128);
  #sampleCounts = new Float64Array(128);
  #sampleBytes = new Float64Array(128);
  #samples = 0;
  /** Milliseconds of recent progress the rate is measured over. */
  #window: number;
  /** The bar is on the screen (the cursor at its end). */
  #drawn = false;
  /** The text last drawn. */
  #lastText = "";
  #stopped = false;

  /**
   * A display on `io`'s standard error: a bar when it is a terminal (and `io` can write to it
   * as it is, {@link CliIo.writeStderr}), else plain lines. Nothing is shown until the first
   * phase starts; {@link ProgressDisplay.stop} (or `using`) ends it.
   *
   * @param io where the command prints
   */
  constructor(io: CliIo) {
    this.#base = io;
    this.#terminal = io.isTerminal && io.writeStderr !== undefined;
    this.#startTime = Date.now();
    this.io = {
      ...io,
      stdout: (text) => this.#above(text, io.stdoutIsTerminal === true, io.stdout),
      stderr: (text) => this.#above(text, true, io.stderr),
    };
    const every = this.#terminal ? REDRAW_EVERY : io.progressInterval ?? LINE_EVERY;
    // At least one sample older than the last tick stays inside it.
    this.#window = Math.max(RATE_WINDOW, 1.5 * every);
    this.#timer = setInterval(() => this.#tick(), every);
    shown = this;
    Deno.unrefTimer(this.#timer); // a run never waits for it
  }

  /**
   * A phase starts: shown at once on a terminal; its counts start at 0.
   *
   * @param name the phase's name (`scanning`, `planning`, `writing`, `finalizing`)
   * @param shape what it counts, and the totals when known
   */
  phase(name: string, shape: PhaseShape = {}): void {
    if (this.#stopped) return;
    // The phase that ends keeps its last state as a line of its own (what was written stays
    // readable above the finalizing line), as the last phase does at the stop.
    if (this.#phase !== undefined) this.#settle();
    this.#phase = name;
    this.#shape = shape;
    this.#phaseStart = Date.now();
    this.#count = 0;
    this.#bytes = 0;
    this.#current = "";
    this.#samples = 0;
    this.#sample(this.#phaseStart);
    if (this.#terminal) this.#draw(this.#text(this.#phaseStart, false));
  }

  /**
   * The counts so far of the current phase: cheap (stored, drawn on the next tick).
   *
   * @param count items done (files, entries)
   * @param bytes bytes done
   * @param current the name being worked on ("" for none); made printable when drawn
   */
  update(count: number, bytes: number, current: string): void {
    this.#count = count;
    this.#bytes = bytes;
    this.#current = current;
  }

  /**
   * Stop: the last state stays on the terminal as a line of its own (or is printed as the last
   * plain line); later lines print as usual. Idempotent.
   */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    if (shown === this) shown = undefined;
    if (this.#phase === undefined) return;
    this.#settle();
  }

  /** The current phase's final state as a line of its own (a plain line off a terminal). */
  #settle(): void {
    const text = this.#text(Date.now(), true).trimEnd();
    if (this.#terminal) {
      this.#draw(text);
      this.#base.writeStderr!("\n");
      this.#drawn = false;
    } else this.#base.stderr(`ctnr: progress: ${text}`);
  }

  /** Stop (for `using`). */
  [Symbol.dispose](): void {
    this.stop();
  }

  /** Print a line above the bar: clear it, print, draw it again. */
  #above(text: string, onScreen: boolean, print: (text: string) => void): void {
    if (!this.#drawn || !onScreen) return print(text);
    this.#base.writeStderr!("\r\x1b[K");
    this.#drawn = false;
    try {
      print(text);
    } finally {
      this.#draw(this.#lastText);
    }
  }

  #tick(): void {
    if (this.#phase === undefined || this.#stopped) return;
    const now = Date.now();
    this.#sample(now);
    const text = this.#text(now, false);
    if (!this.#terminal) this.#base.stderr(`ctnr: progress: ${text}`);
    else if (text !== this.#lastText || !this.#drawn) this.#draw(text);
  }

  /** Draw the bar line, with line wrapping off while it is drawn (a line too long is cut). */
  #draw(text: string): void {
    this.#lastText = text;
    this.#base.writeStderr!(`\r\x1b[?7l${text}\x1b[K\x1b[?7h`);
    this.#drawn = true;
  }

  /** Record the counts for the rates. */
  #sample(now: number): void {
    const i = this.#samples % this.#sampleTimes.length;
    this.#sampleTimes[i] = now;
    this.#sampleCounts[i] = this.#count;
    this.#sampleBytes[i] = this.#bytes;
    this.#samples++;
  }

  /**
   * Count and bytes per second, over the last {@link RATE_WINDOW} of samples (over the whole
   * phase at the end).
   */
  #rates(now: number, final: boolean): { count: number; bytes: number } {
    let since = this.#phaseStart;
    let count = 0;
    let bytes = 0;
    if (!final) {
      const size = this.#sampleTimes.length;
      // The oldest sample still inside the window.
      for (let k = Math.max(0, this.#samples - size); k < this.#samples; k++) {
        const t = this.#sampleTimes[k % size]!;
        if (now - t <= this.#window) {
          since = t;
          count = this.#sampleCounts[k % size]!;
          bytes = this.#sampleBytes[k % size]!;
          break;
        }
      }
    }
    const seconds = (now - since) / 1000;
    if (!(seconds > 0)) return { count: 0, bytes: 0 };
    return { count: (this.#count - count) / seconds, bytes: (this.#bytes - bytes) / seconds };
  }

  /**
   * The progress text, without the prefix of a plain line. On a terminal it fits the width:
   * `writing  42% ████████░░░░ 840/2002 files 20.0MiB/47.7MiB [00:01<00:02, 18.3MiB/s]  name`,
   * the bar as wide as the line allows once the totals are reached (so it keeps its width; the
   * unit words dropped first, no bar under 6 characters), the name cut from the left.
   */
  #text(now: number, final: boolean): string {
    const shape = this.#shape;
    // Percent and time left from the bytes when their total is known, else from the count.
    let fraction: number | undefined;
    let remaining = 0;
    let rateOfRemaining = 0;
    const rates = this.#rates(now, final);
    if (
      shape.totalBytes !== undefined && (shape.totalBytes > 0 || shape.totalCount === undefined)
    ) {
      fraction = shape.totalBytes > 0 ? this.#bytes / shape.totalBytes : 1;
      remaining = shape.totalBytes - this.#bytes;
      rateOfRemaining = rates.bytes;
    } else if (shape.totalCount !== undefined) {
      fraction = shape.totalCount > 0 ? this.#count / shape.totalCount : 1;
      remaining = shape.totalCount - this.#count;
      rateOfRemaining = rates.count;
    }
    if (fraction !== undefined) fraction = Math.min(1, Math.max(0, fraction));
    const percent = fraction === undefined ? "" : `${Math.floor(fraction * 100)}%`;
    const count = (done: number, unit: boolean) =>
      shape.unit === undefined
        ? ""
        : `${done}${shape.totalCount !== undefined ? `/${shape.totalCount}` : ""}${
          unit
            ? ` ${done === 1 && shape.totalCount === undefined ? one(shape.unit) : shape.unit}`
            : ""
        }`;
    const bytes = (done: number) =>
      shape.bytes
        ? `${shape.bytesLabel ?? ""}${size(done)}${
          shape.totalBytes !== undefined ? `/${size(shape.totalBytes)}` : ""
        }`
        : "";
    const speed = shape.bytes
      ? `${size(rates.bytes)}/s`
      : shape.unit !== undefined
      ? `${rates.count.toFixed(rates.count < 10 ? 1 : 0)} ${shape.unit.split(" ")[0]}/s`
      : "";
    const elapsed = clock((now - this.#startTime) / 1000);
    const eta = final || remaining <= 0
      ? undefined
      : rateOfRemaining > 0
      ? clock(remaining / rateOfRemaining)
      : "--:--";
    const name = final ? "" : printable(this.#current);
    const phase = this.#phase ?? "";
    if (!this.#terminal) {
      const parts = [percent, count(this.#count, true), bytes(this.#bytes), speed];
      parts.push(`elapsed ${elapsed}`, eta === undefined ? "" : `ETA ${eta}`, name);
      return `${phase} ${parts.filter((p) => p !== "").join(" | ")}`;
    }
    const columns = this.#base.terminalColumns?.() ?? 80;
    const time = `[${elapsed}${eta === undefined ? "" : `<${eta}`}${speed ? `, ${speed}` : ""}]`;
    const line = (unit: boolean, bar: number) =>
      [
        phase,
        percent.padStart(percent ? 4 : 0),
        bar > 0 && fraction !== undefined ? drawBar(fraction, bar) : "",
        count(this.#count, unit),
        bytes(this.#bytes),
        time,
      ].filter((p) => p !== "").join(" ");
    // The room for the bar, from the line with the totals reached and the longest times.
    const widest = (unit: boolean) =>
      [
        phase,
        "100%",
        count(shape.totalCount ?? this.#count, unit),
        bytes(shape.totalBytes ?? this.#bytes),
        `[00:00<00:00${speed ? ", 1.00GiB/s" : ""}]`,
      ].filter((p) => p !== "").join(" ").length + 1;
    let unit = true;
    let room = fraction === undefined ? 0 : Math.min(BAR_SIZE, columns - 1 - widest(true));
    if (fraction !== undefined && room < 10) {
      unit = false;
      room = Math.min(BAR_SIZE, columns - 1 - widest(false));
    }
    let text = line(unit, room >= 6 ? room : 0);
    const left = columns - 1 - columnsOf(text) - 2;
    if (name !== "" && left >= 8) {
      text += "  " + (columnsOf(name) <= left ? name : "…" + tailOfWidth(name, left - 1));
    }
    return columnsOf(text) < columns ? text : text.slice(0, columns - 2) + "…";
  }
}

/**
 * The `onProgress` of a create run, shown on `display`: the library's phases, with the files
 * and bytes of the prescan as totals.
 *
 * @param display where to show it
 * @param sizes whether the prescan sums the sizes (`--scan-sizes`)
 * @returns the callback
 */
export function showCreateProgress(
  display: ProgressDisplay,
  sizes: boolean,
): (p: CreateProgress) => void {
  let phase: CreatePhase | undefined;
  return (p) => {
    if (p.phase !== phase) {
      phase = p.phase;
      if (phase === "scanning") {
        display.phase("scanning", { unit: "files found", bytes: sizes });
      } else if (phase === "writing") {
        const shape: PhaseShape = { unit: "files", bytes: true };
        if (p.totalItems !== undefined) shape.totalCount = p.totalItems;
        if (p.totalBytes !== undefined) shape.totalBytes = p.totalBytes;
        display.phase("writing", shape);
      } else display.phase(phase);
    }
    display.update(p.itemsDone, p.bytesDone, p.currentFile);
  };
}

/**
 * The `onProgress` of an extract (or verify) run, shown on `display`: planning counts the index
 * bytes read; writing the entries and bytes done of the plan's.
 *
 * @param display where to show it
 * @param writing the name of the writing phase (`writing`, or `verifying` for verify)
 * @returns the callback
 */
export function showExtractProgress(
  display: ProgressDisplay,
  writing: string,
): (p: ExtractProgress) => void {
  let phase: string | undefined;
  let shape: PhaseShape = {};
  return (p) => {
    if (p.phase !== phase) {
      phase = p.phase;
      shape = phase === "planning"
        ? { bytes: true, bytesLabel: "index ", totalBytes: p.indexBytes }
        : { unit: "entries", bytes: true, totalCount: p.totalEntries };
      display.phase(phase === "planning" ? "planning" : writing, shape);
    }
    if (phase === "planning") display.update(0, p.indexBytesRead, "");
    else {
      // Totals as they stand: a shard set's grow as its shards plan (cli/extract.ts), and its
      // bytes to do are 0 until every shard has planned: no byte total then, not "/0B".
      shape.totalCount = p.totalEntries;
      if (p.totalBytes > 0 || p.entriesDone >= p.totalEntries) shape.totalBytes = p.totalBytes;
      else delete shape.totalBytes;
      display.update(p.entriesDone, p.bytesDone, p.currentEntry);
    }
  };
}

/** A bar of `size` characters, `fraction` (0 to 1) of it full. */
/** The unit of one item: `1 file found`, `1 entry` (a count without a total). */
function one(unit: string): string {
  return unit.replace(/^files\b/, "file").replace(/^entries\b/, "entry");
}

function drawBar(fraction: number, size: number): string {
  const full = Math.round(fraction * size);
  return "█".repeat(full) + "░".repeat(size - full);
}

/** A size in bytes in at most three digits and a unit (`0B`, `512B`, `4.00KiB`, `47.7MiB`, `390MiB`). */
function size(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = bytes;
  let unit = 0;
  while (n >= 1000 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(n)}B`;
  return `${n.toPrecision(3)}${units[unit]}`;
}

/** Seconds as `mm:ss`, or `h:mm:ss` from an hour on. */
function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const two = (n: number) => String(n).padStart(2, "0");
  const hours = Math.floor(s / 3600);
  const rest = `${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
  return hours > 0 ? `${hours}:${rest}` : rest;
}

/**
 * The columns `text` takes on a terminal, as wcwidth counts them: 2 for East Asian wide and
 * full-width characters and emoji, 0 for combining marks, zero-width joiners and variation
 * selectors, 1 for the rest.
 *
 * @param text printable text (control characters already escaped)
 * @returns its width in columns
 */
export function columnsOf(text: string): number {
  let width = 0;
  for (const char of text) width += charColumns(char);
  return width;
}

/** The end of `text` that fits in `width` columns (whole characters). */
function tailOfWidth(text: string, width: number): string {
  const chars = [...text];
  let used = 0;
  let start = chars.length;
  while (start > 0) {
    const next = used + charColumns(chars[start - 1]!);
    if (next > width) break;
    used = next;
    start--;
  }
  return chars.slice(start).join("");
}

function charColumns(char: string): number {
  const code = char.codePointAt(0)!;
  if (code < 0x300) return 1;
  if (ZERO_WIDTH.test(char)) return 0;
  return WIDE.test(char) ? 2 : 1;
}

const ZERO_WIDTH = /^[\p{Mn}\p{Me}\u200b-\u200f\ufe00-\ufe0f]$/u;
// East Asian Wide (W) and Fullwidth (F) blocks, and emoji drawn two columns wide.
const WIDE =
  /^[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{1f300}-\u{1f64f}\u{1f900}-\u{1f9ff}\u{20000}-\u{3fffd}]$/u;
