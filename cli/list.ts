/**
 * `ctnr list`: the entries of a container, one line each: relpaths alone (as
 * `tar -t`), `-l` details and totals (as `tar -tv`), or `--json` index lines
 * (NDJSON). Lines go out in 64 KiB blocks (cli/line_buffer.ts).
 *
 * @module
 */

import { encodeEntry, type IndexEntry, Selection, UsageError } from "../mod.ts";
import { reportUnmatched } from "./extract.ts";
import { type CommandSpec, helpText, parseCommand } from "./flags.ts";
import { LineBuffer } from "./line_buffer.ts";
import { type CliIo, printable } from "./output.ts";
import {
  CONTAINER_FLAG,
  INDEX_FLAG,
  LENIENT_FLAG,
  openReader,
  openShardReader,
  openShardSet,
  printRemoteCost,
  REMOTE_FLAGS,
  REMOTE_VERBOSE_FLAG,
  remoteOptions,
} from "./_reader.ts";
import { count, size } from "./units.ts";

/** The flags of `list`. */
export const LIST = {
  name: "list",
  usage: "ctnr list --container FILE [--index FILE] [-l | --json] [--lenient] [PATTERN...]",
  flags: [
    CONTAINER_FLAG,
    INDEX_FLAG,
    {
      name: "long",
      short: "l",
      type: "boolean",
      origin: "ctnr",
      help: "mode, size, stored size, mtime (UTC) and relpath of each entry,\n" +
        "then the totals",
    },
    {
      name: "json",
      type: "boolean",
      origin: "ctnr",
      help: "print each entry as its index line (NDJSON, full SHA-256); no summary",
    },
    LENIENT_FLAG,
    REMOTE_VERBOSE_FLAG,
    ...REMOTE_FLAGS,
  ],
} as const satisfies CommandSpec;

/**
 * Run `ctnr list`.
 *
 * @param args arguments after `list`
 * @param io where to print
 * @returns the exit code
 */
export async function runList(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(LIST, args);
  if (values.help) {
    io.stdout(helpText(LIST));
    return 0;
  }
  // The positionals: CONTAINER, when --container does not give it.
  const rest = [...positionals];
  const container = values.container ?? rest.shift();
  if (values.long && values.json) {
    throw new UsageError("Options --long and --json do not go together (--json has every field)");
  }
  // What is left are patterns (README "Selecting entries").
  const select = rest.length > 0 ? new Selection(rest) : undefined;
  const remote = await remoteOptions(values, undefined, container);
  const set = await openShardSet(container, values.index, remote);
  const out = new LineBuffer(io);
  const line = values.json ? jsonLine : values.long ? new LongLines().line : shortLine;
  const totals = new Totals();
  // A shard set lists its shards in manifest order, each opened once the one before is done.
  const shards = set?.shards() ?? [undefined];
  try {
    for (const shard of shards) {
      const reader = set === undefined
        ? await openReader(container, values.index, values.lenient, io, undefined, remote)
        : await openShardReader(set, shard!, values.lenient, io, undefined, remote);
      try {
        if (select === undefined) {
          for await (const batch of reader.recordBatches()) {
            for (const { entry } of batch) {
              out.push(line(entry));
              totals.add(entry);
            }
          }
        } else {
          await reader.takeLiterally(select);
          for await (const entry of reader.entries({ select })) {
            out.push(line(entry));
            totals.add(entry);
          }
        }
      } finally {
        reader.close();
      }
    }
    if (values.long) out.push(totals.line());
  } finally {
    // What was listed before a fault is printed before the fault is reported.
    out.flush();
  }
  printRemoteCost(remote.stats, values.verbose, io);
  return reportUnmatched(select, io) ? 1 : 0;
}

/** The relpath, as `tar -t` prints it: folders end with `/`. */
function shortLine(entry: IndexEntry): string {
  return entry.entryType === "dir" ? `${printable(entry.relpath)}/` : printable(entry.relpath);
}

/** The entry as its index line, without the newline. */
function jsonLine(entry: IndexEntry): string {
  const line = encodeEntry(entry);
  return line.slice(0, -1);
}

/**
 * `-l` lines: `0644      50000       1203 2024-05-01T12:00:00Z data/noise.bin` (mode in octal,
 * size and stored size in bytes, mtime in UTC to the second, relpath; `-` for a mode or mtime
 * the entry does not record). The size columns are 10 wide and grow to the longest size met, so
 * the lines from there on stay aligned (the listing streams: earlier lines are already out).
 */
class LongLines {
  #second = NaN;
  #time = "";
  /** Width of the size columns: 10, grown to the longest size met so far (as GNU tar does). */
  #width = 10;

  line = (entry: IndexEntry): string => {
    const mode = entry.mode === undefined ? "   -" : entry.mode.toString(8).padStart(4, "0");
    let name = printable(entry.relpath);
    if (entry.entryType === "dir") name += "/";
    else if (entry.entryType === "symlink") name += ` -> ${printable(entry.linkTarget ?? "")}`;
    const orig = String(entry.origSize);
    const stored = String(entry.payloadSize);
    this.#width = Math.max(this.#width, orig.length, stored.length);
    return `${mode} ${orig.padStart(this.#width)} ${stored.padStart(this.#width)} ${
      this.#mtime(entry.mtime)
    } ${name}`;
  };

  /** ISO 8601 in UTC to the second; the text of the last second is reused (entries of a tree share many). */
  #mtime(mtime: number | undefined): string {
    if (mtime === undefined) return "                   -";
    const second = Math.floor(mtime);
    if (second !== this.#second) {
      this.#second = second;
      const date = new Date(second * 1000);
      const year = date.getUTCFullYear(); // NaN for a time past what Date holds
      // Years 0 to 9999 in ISO 8601's four digits; outside them, seconds since the epoch.
      this.#time = year >= 0 && year <= 9999
        ? date.toISOString().slice(0, 19) + "Z"
        : String(second).padStart(20);
    }
    return this.#time;
  }
}

/** The totals `list -l` ends with. */
class Totals {
  entries = 0;
  files = 0;
  folders = 0;
  links = 0;
  origBytes = 0;
  storedBytes = 0;

  add(entry: IndexEntry): void {
    this.entries++;
    if (entry.entryType === "dir") this.folders++;
    else if (entry.entryType === "symlink") this.links++;
    else this.files++;
    this.origBytes += entry.origSize;
    this.storedBytes += entry.payloadSize;
  }

  /** `total: 6 entries (4 files, 1 folder, 1 link), 48.9 KiB, 12.1 KiB stored` */
  line(): string {
    return `total: ${count(this.entries, "entry", "entries")} (${count(this.files, "file")}, ${
      count(this.folders, "folder")
    }, ${count(this.links, "link")}), ${size(this.origBytes)}, ${size(this.storedBytes)} stored`;
  }
}
