/**
 * The `ctnr` command: argument parsing, printing and exit codes only.
 *
 * ```text
 * ctnr create  --src DIR --container FILE [options]
 * ctnr extract --container FILE --outdir DIR [options]
 * ctnr list    --container FILE [--index FILE] [--json]
 * ctnr verify  --container FILE [--index FILE]
 * ctnr cat     --container FILE RELPATH
 * ```
 *
 * Exit codes: 0 done; 1 a data fault (corrupt, unsafe, mismatch, conflict);
 * 2 a usage error; 3 created but incomplete (unreadable source files);
 * 130 SIGINT; 143 SIGTERM.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import {
  ContainerReader,
  createContainer,
  CtnrError,
  encodeEntry,
  extractContainer,
  finalizeContainer,
  UsageError,
} from "./mod.ts";
import type { CreateOptions, ExtractOptions, IndexEntry } from "./mod.ts";
import { writeAll } from "./lib/file_layer.ts";

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
}

const VERSION = "0.1.0";

const DEFAULT_IO: CliIo = {
  stdout: (text) => console.log(text),
  stderr: (text) => console.error(text),
  writeBytes: (bytes) => writeAll(Deno.stdout, bytes),
  isTerminal: Deno.stderr.isTerminal(),
};

const USAGE = `ctnr ${VERSION}: pack a folder tree into one verified container file (CTNRv1)

Usage:
  ctnr create  --src DIR --container FILE [options]   (or: ctnr create DIR FILE)
  ctnr extract --container FILE --outdir DIR [options] (or: ctnr extract FILE DIR)
  ctnr list    --container FILE [--index FILE] [--json]
  ctnr verify  --container FILE [--index FILE]
  ctnr cat     --container FILE RELPATH

Run "ctnr COMMAND --help" for the options of a command.
Exit codes: 0 ok, 1 data fault, 2 usage, 3 created but incomplete, 130 SIGINT, 143 SIGTERM.`;

const CREATE_HELP = `Usage: ctnr create --src DIR --container FILE [options]

Options of the original create_container.py (same names, same meaning):
  --src DIR                 folder to pack (not needed with --finalize-only)
  --container FILE          container to write, or to continue when it exists (resume)
  --index FILE              NDJSON index (default: <container>.idx)
  --compress                store each payload as one gzip member
  --tqdm                    show a progress bar on stderr
  --count                   count files first (progress total)
  --scan-sizes              count files and bytes first (progress total and ETA)
  --print-each              print each entry as it is committed
  --status-file FILE        rewrite a status file about once a second
  --status-format kv|json   format of the status file (default kv)
  --fsync-every N           fsync the container every N entries (default 1000, or
                            --index-batch when that is smaller)
  --index-batch N           commit the index every N entries, N >= --fsync-every (default: --fsync-every)
  --chunk-size BYTES        read size for large files, minimum 1024 (default 1048576
                            with --compress, else 4194304)
  -v, --verbose             more output (repeatable)
  --dry-run                 read, hash and compress, write nothing
  --finalize                embed the index as a trailer when done
  --finalize-only           only embed the existing index, pack nothing
  --remove-index-on-finalize  delete the standalone index after embedding it
Options ctnr adds:
  --symlinks store|skip     record symlinks as links (default) or leave them out
  --no-empty-dirs           do not record empty folders
  --compat                  only entries the original extractor reads (= --symlinks skip --no-empty-dirs)
  --concurrency N           read workers, 0 to 16 (default 1, 2 with --compress; 0 reads
                            on the main thread)`;

const EXTRACT_HELP = `Usage: ctnr extract --container FILE --outdir DIR [options]

Options of the original extract_container_updated.py (same names, same meaning):
  --container FILE          container to read
  --index FILE              external index (preferred over the embedded one)
  --outdir DIR              output folder (created when missing)
  --chunk-size BYTES        read size for large payloads, minimum 1024 (default 1048576
                            for compressed ones, else 4194304)
  --tqdm                    show a progress bar on stderr
  --status-file FILE        rewrite a status file about once a second
  --status-format kv|json   format of the status file (default kv)
  --skip-existing           skip a target that exists with size orig_size
  --verify-existing         skip it only when its SHA-256 matches (implies --skip-existing)
  -v, --verbose             more output (repeatable)
  --dry-run                 read and verify every payload, write nothing
  --lookback BYTES          accepted for compatibility; ctnr finds any index without a window
Options ctnr adds:
  --keep-going              go on after an entry fails (exit code is still 1)
  --lenient                 skip malformed index lines with a warning (the original's behaviour)
  --allow-unsafe-links      extract symlinks that point outside the output folder
  --fsync                   fsync each file before its rename
  --concurrency N           write workers, 0 to 16 (default 2; 0 writes on the main thread)`;

/**
 * Run the command line `args` and return the process exit code.
 *
 * @param args the arguments after the program name
 * @param io where to print (tests pass their own)
 * @returns the exit code
 */
export async function main(args: string[], io: CliIo = DEFAULT_IO): Promise<number> {
  const [command, ...rest] = args;
  const controller = new AbortController();
  const listeners: [Deno.Signal, () => void][] = [];
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const listener = () => controller.abort(signal);
    try {
      Deno.addSignalListener(signal, listener);
      listeners.push([signal, listener]);
    } catch { /* not supported on this platform */ }
  }
  try {
    switch (command) {
      case "create":
        return await runCreate(rest, io, controller.signal);
      case "extract":
        return await runExtract(rest, io, controller.signal, false);
      case "verify":
        return await runExtract(rest, io, controller.signal, true);
      case "list":
        return await runList(rest, io);
      case "cat":
        return await runCat(rest, io);
      case "--version":
      case "version":
        io.stdout(`ctnr ${VERSION}`);
        return 0;
      case undefined:
      case "-h":
      case "--help":
      case "help":
        io.stdout(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`Unknown command "${command}"`);
    }
  } catch (error) {
    return report(error, io, command);
  } finally {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
}

const COMMANDS = ["create", "extract", "verify", "list", "cat"];

function helpCommand(command: string | undefined): string {
  return command !== undefined && COMMANDS.includes(command)
    ? `ctnr ${command} --help`
    : "ctnr --help";
}

function report(error: unknown, io: CliIo, command: string | undefined): number {
  if (error instanceof CtnrError) {
    io.stderr(`ctnr: ${printableMessage(error.message)}`);
    if (error instanceof UsageError) io.stderr(`Run "${helpCommand(command)}" for usage.`);
    return error.exitCode;
  }
  if (
    error instanceof TypeError && (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
  ) {
    const unknown = /Unknown option '([^']*)'/.exec(error.message);
    io.stderr(`ctnr: ${unknown ? `Unknown option "${unknown[1]}"` : error.message}`);
    io.stderr(`Run "${helpCommand(command)}" for usage.`);
    return 2;
  }
  if (error instanceof Deno.errors.NotCapable) {
    io.stderr(
      `ctnr: Deno did not grant access: ${
        (error as Error).message.replace(/, run again.*$/, "")
      }; ` +
        `run ctnr with --allow-all (paths under /dev and /proc, such as /dev/shm, need it)`,
    );
    return 2;
  }
  if (error instanceof Error && Object.values(Deno.errors).some((kind) => error instanceof kind)) {
    // An operating-system error (missing file, permission, a folder where a file should be):
    // the message names the path; no stack trace.
    io.stderr(`ctnr: ${printableMessage(error.message)}`);
    return 1;
  }
  io.stderr(`ctnr: unexpected error: ${(error as Error)?.stack ?? error}`);
  return 1;
}

// ---------------------------------------------------------------------------

async function runCreate(args: string[], io: CliIo, signal: AbortSignal): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      src: { type: "string" },
      container: { type: "string" },
      index: { type: "string" },
      compress: { type: "boolean" },
      tqdm: { type: "boolean" },
      count: { type: "boolean" },
      "scan-sizes": { type: "boolean" },
      "print-each": { type: "boolean" },
      "status-file": { type: "string" },
      "status-format": { type: "string" },
      "fsync-every": { type: "string" },
      "index-batch": { type: "string" },
      "chunk-size": { type: "string" },
      verbose: { type: "boolean", short: "v", multiple: true },
      "dry-run": { type: "boolean" },
      finalize: { type: "boolean" },
      "finalize-only": { type: "boolean" },
      "remove-index-on-finalize": { type: "boolean" },
      symlinks: { type: "string" },
      "no-empty-dirs": { type: "boolean" },
      compat: { type: "boolean" },
      concurrency: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.stdout(CREATE_HELP);
    return 0;
  }
  const rest = [...positionals];
  const src = values.src ?? rest.shift();
  const container = values.container ?? rest.shift();
  if (rest.length > 0) throw new UsageError(`Unexpected argument "${rest[0]}"`);
  if (container === undefined) throw new UsageError("Missing --container FILE");
  const verbosity = values.verbose?.length ?? 0;
  const log = logger(io, verbosity);

  if (values["finalize-only"]) {
    if (values["dry-run"]) {
      log(0, "Dry-run: would finalize (no changes).");
      return 0;
    }
    const options: Parameters<typeof finalizeContainer>[1] = {
      removeIndex: values["remove-index-on-finalize"] ?? false,
    };
    if (values.index !== undefined) options.index = values.index;
    const written = await finalizeContainer(container, options);
    log(0, written ? "Finalized container." : "Container already has a trailer; nothing to do.");
    return 0;
  }
  if (src === undefined) {
    throw new UsageError("Missing --src DIR (only --finalize-only works without it)");
  }

  const options: CreateOptions = {
    compress: values.compress ?? false,
    dryRun: values["dry-run"] ?? false,
    finalize: values.finalize ?? false,
    removeIndexOnFinalize: values["remove-index-on-finalize"] ?? false,
    signal,
    statusFormat: statusFormat(values["status-format"]),
    onWarning: (message) => io.stderr(`ctnr: warning: ${printableMessage(message)}`),
    onSourceError: (error) => io.stderr(`ctnr: error: ${printableMessage(error.message)}`),
  };
  if (values.index !== undefined) options.index = values.index;
  if (values["status-file"] !== undefined) options.statusFile = values["status-file"];
  if (values["fsync-every"] !== undefined) {
    options.fsyncEvery = integer("--fsync-every", values["fsync-every"]);
  }
  if (values["index-batch"] !== undefined) {
    options.indexBatch = integer("--index-batch", values["index-batch"]);
    // --index-batch alone: fsync at least that often, so the pair stays valid.
    if (options.indexBatch >= 1) options.fsyncEvery ??= Math.min(1000, options.indexBatch);
  }
  if (values["chunk-size"] !== undefined) {
    options.chunkSize = integer("--chunk-size", values["chunk-size"]);
  }
  if (values.concurrency !== undefined) options.concurrency = workers(values.concurrency);
  if (values["scan-sizes"]) options.prescan = "sizes";
  else if (values.count) options.prescan = "count";
  const symlinks = values.symlinks ?? (values.compat ? "skip" : "store");
  if (symlinks !== "store" && symlinks !== "skip") {
    throw new UsageError(`Option --symlinks must be "store" or "skip", got "${symlinks}"`);
  }
  options.symlinks = symlinks;
  options.emptyDirs = !(values["no-empty-dirs"] || values.compat);
  if (values["print-each"] || verbosity >= 1) {
    options.onEntry = (entry) => log(0, describe(entry));
  }
  const bar = values.tqdm ? await progressBar(io) : undefined;
  if (bar) {
    options.onProgress = (p) => bar.update(p.processedFiles, p.totalFiles, p.currentFile);
  }
  let result;
  try {
    result = await createContainer(src, container, options);
  } finally {
    bar?.stop();
  }
  log(0, `Done.${result.resumed ? " (resumed)" : ""}`);
  if (!options.dryRun) {
    log(
      0,
      result.finalized
        ? `Index embedded in: ${container}`
        : `Index file (NDJSON): ${result.indexPath}`,
    );
  }
  log(0, `Container file: ${container} (dry-run=${options.dryRun})`);
  log(
    0,
    `Added ${result.added} entries (${human(result.origBytes)} read, ${
      human(result.payloadBytes)
    } stored)` +
      `, ${result.alreadyPresent} already present, ${result.totalEntries} in the index`,
  );
  if (result.leftOut > 0) {
    log(0, `Left out ${result.leftOut} special files or links (see warnings)`);
  }
  if (result.sourceErrors > 0) {
    io.stderr(
      `ctnr: ${result.sourceErrors} source files or folders could not be read; ` +
        `the container is incomplete (run create again to add them once readable)`,
    );
  }
  if (result.staleEntries > 0) {
    io.stderr(
      `ctnr: ${result.staleEntries} files changed after they were committed; ` +
        `the container holds their older version (see warnings)`,
    );
  }
  if (result.sourceErrors > 0 || result.staleEntries > 0) return 3;
  return 0;
}

async function runExtract(
  args: string[],
  io: CliIo,
  signal: AbortSignal,
  verifyOnly: boolean,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      container: { type: "string" },
      index: { type: "string" },
      outdir: { type: "string" },
      lookback: { type: "string" },
      "chunk-size": { type: "string" },
      tqdm: { type: "boolean" },
      "status-file": { type: "string" },
      "status-format": { type: "string" },
      "skip-existing": { type: "boolean" },
      "verify-existing": { type: "boolean" },
      verbose: { type: "boolean", short: "v", multiple: true },
      "dry-run": { type: "boolean" },
      "keep-going": { type: "boolean" },
      lenient: { type: "boolean" },
      "allow-unsafe-links": { type: "boolean" },
      fsync: { type: "boolean" },
      concurrency: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.stdout(
      verifyOnly ? "Usage: ctnr verify --container FILE [--index FILE] [--lenient]" : EXTRACT_HELP,
    );
    return 0;
  }
  const rest = [...positionals];
  const container = values.container ?? rest.shift();
  const outdir = verifyOnly ? "." : values.outdir ?? rest.shift();
  if (rest.length > 0) throw new UsageError(`Unexpected argument "${rest[0]}"`);
  if (container === undefined) throw new UsageError("Missing --container FILE");
  if (outdir === undefined) throw new UsageError("Missing --outdir DIR");
  if (values.lookback !== undefined) integer("--lookback", values.lookback);
  const verbosity = values.verbose?.length ?? 0;
  const log = logger(io, verbosity);
  const dryRun = verifyOnly || (values["dry-run"] ?? false);
  const options: ExtractOptions = {
    dryRun,
    skipExisting: values["skip-existing"] ?? false,
    verifyExisting: values["verify-existing"] ?? false,
    keepGoing: values["keep-going"] ?? false,
    lenient: values.lenient ?? false,
    allowUnsafeLinks: values["allow-unsafe-links"] ?? false,
    fsync: values.fsync ?? false,
    signal,
    statusFormat: statusFormat(values["status-format"]),
    onWarning: (message) => io.stderr(`ctnr: warning: ${printableMessage(message)}`),
  };
  // Without --keep-going the run stops at the first fault, which report() prints once.
  let failed = 0;
  if (values["keep-going"]) {
    options.onEntryError = (_entry, error) => {
      failed++;
      io.stderr(`ctnr: error: ${printableMessage(error.message)}`);
    };
  }
  if (values.index !== undefined) options.index = values.index;
  if (values["status-file"] !== undefined) options.statusFile = values["status-file"];
  if (values["chunk-size"] !== undefined) {
    options.chunkSize = integer("--chunk-size", values["chunk-size"]);
  }
  if (values.concurrency !== undefined) options.concurrency = workers(values.concurrency);
  const bar = values.tqdm ? await progressBar(io) : undefined;
  let done = 0;
  options.onPlan = (plan) => {
    log(
      1,
      `Index: ${plan.entries} entries (${plan.files} files, ${plan.dirs} folders, ${plan.symlinks} links), ${
        human(plan.totalBytes)
      }`,
    );
    bar?.start(plan.entries);
  };
  options.onEntry = (entry, action) => {
    done++;
    bar?.update(done, undefined, entry.relpath);
    if (verbosity >= 2 || (verbosity >= 1 && action === "skipped")) {
      log(0, `${action}: ${entry.relpath}`);
    }
  };
  let result;
  try {
    result = await extractContainer(container, outdir, options);
  } catch (error) {
    if (!options.keepGoing || failed === 0 || !(error instanceof CtnrError)) {
      throw error;
    }
    bar?.stop();
    io.stderr(
      `ctnr: ${dryRun ? "verification" : "extraction"} incomplete: ${failed} entries failed ` +
        `(named above); the rest was ${dryRun ? "verified" : "extracted"}`,
    );
    return error.exitCode;
  } finally {
    bar?.stop();
  }
  if (verifyOnly || dryRun) {
    log(
      0,
      `Verified ${result.extracted} entries, ${
        human(result.bytes)
      }: all payloads match their SHA-256`,
    );
  } else {
    log(0, "Done.");
    log(
      0,
      `Extracted entries: ${result.extracted}/${result.plan.entries} (${result.plan.files} files, ` +
        `${result.plan.dirs} folders, ${result.plan.symlinks} links)  bytes: ${
          human(result.bytes)
        }` +
        (result.skipped ? `  skipped existing: ${result.skipped}` : ""),
    );
  }
  return 0;
}

async function runList(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      container: { type: "string" },
      index: { type: "string" },
      json: { type: "boolean" },
      lenient: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.stdout("Usage: ctnr list --container FILE [--index FILE] [--json] [--lenient]");
    return 0;
  }
  const rest = [...positionals];
  const container = values.container ?? rest.shift();
  if (rest.length > 0) throw new UsageError(`Unexpected argument "${rest[0]}"`);
  const reader = await openReader(container, values.index, values.lenient, io);
  try {
    for await (const entry of reader.entries()) {
      io.stdout(values.json ? encodeEntry(entry).trimEnd() : describe(entry));
    }
  } finally {
    reader.close();
  }
  return 0;
}

async function runCat(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      container: { type: "string" },
      index: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    io.stdout(
      "Usage: ctnr cat --container FILE [--index FILE] RELPATH  (writes the file to stdout)",
    );
    return 0;
  }
  const rest = [...positionals];
  const container = values.container ?? rest.shift();
  const relpath = rest.shift();
  if (relpath === undefined) throw new UsageError("Missing RELPATH");
  if (rest.length > 0) throw new UsageError(`Unexpected argument "${rest[0]}"`);
  const reader = await openReader(container, values.index, false, io);
  try {
    const entry = await reader.find(relpath);
    if (entry === undefined) {
      throw new CtnrError("NOT_FOUND", `No entry "${relpath}" in "${container}"`);
    }
    if (entry.entryType !== "file") {
      throw new CtnrError("NOT_FOUND", `Entry "${relpath}" is a ${entry.entryType}, not a file`);
    }
    try {
      if (entry.origSize <= CAT_VERIFY_FIRST) {
        // Small enough to hold: verify all of it before writing a byte.
        const pieces: Uint8Array[] = [];
        for await (const piece of reader.open(entry)) pieces.push(piece);
        for (const piece of pieces) await io.writeBytes(piece);
      } else {
        // Streamed: a fault stops the output midway and exits 1 (see README).
        for await (const piece of reader.open(entry)) await io.writeBytes(piece);
      }
    } catch (error) {
      // The reader went away (`ctnr cat ... | head`): stop quietly, as cat does (128 + SIGPIPE).
      if (error instanceof Deno.errors.BrokenPipe) return 141;
      throw error;
    }
  } finally {
    reader.close();
  }
  return 0;
}

// ---------------------------------------------------------------------------

async function openReader(
  container: string | undefined,
  index: string | undefined,
  lenient: boolean | undefined,
  io: CliIo,
): Promise<ContainerReader> {
  if (container === undefined) throw new UsageError("Missing --container FILE");
  const options: Parameters<typeof ContainerReader.open>[1] = {
    lenient: lenient ?? false,
    onWarning: (message) => io.stderr(`ctnr: warning: ${printableMessage(message)}`),
  };
  if (index !== undefined) options.index = index;
  return await ContainerReader.open(container, options);
}

function workers(text: string): number {
  const n = integer("--concurrency", text);
  if (n > 16) throw new UsageError(`Option --concurrency takes 0 to 16 workers, got ${n}`);
  return n;
}

function integer(name: string, text: string): number {
  if (!/^\d+$/.test(text)) {
    throw new UsageError(`Option ${name} takes a whole number, got "${text}"`);
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new UsageError(`Option ${name} is too large: ${text}`);
  return value;
}

function statusFormat(text: string | undefined): "kv" | "json" {
  if (text === undefined || text === "kv" || text === "json") return text ?? "kv";
  throw new UsageError(`Option --status-format must be "kv" or "json", got "${text}"`);
}

function logger(io: CliIo, verbosity: number) {
  return (level: number, message: string) => {
    if (verbosity < level) return;
    const now = new Date();
    const pad = (n: number) => String(n).padStart(2, "0");
    const stamp = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ` +
      `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
    io.stdout(`[${stamp}] ${message}`);
  };
}

const CAT_VERIFY_FIRST = 64 << 20;

/** A name fit for a terminal line: control characters and backslashes escaped (`\n`, `\x01`). */
function printable(name: string): string {
  return name.replace(UNPRINTABLE_OR_BACKSLASH, escapeChar);
}

/** A message fit for a terminal: control and bidi characters escaped, its line breaks kept. */
function printableMessage(message: string): string {
  return message.split("\n").map((line) => line.replace(UNPRINTABLE, escapeChar)).join("\n");
}

// C0 and C1 controls, DEL, line/paragraph separators, bidirectional overrides and isolates.
// deno-lint-ignore no-control-regex
const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
// deno-lint-ignore no-control-regex
const UNPRINTABLE_OR_BACKSLASH = /[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\\]/g;

function escapeChar(c: string): string {
  if (c === "\\") return "\\\\";
  if (c === "\n") return "\\n";
  if (c === "\t") return "\\t";
  const code = c.charCodeAt(0);
  return code < 0x100
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}

function describe(entry: IndexEntry): string {
  const name = printable(entry.relpath);
  if (entry.entryType === "dir") return `${name}/`;
  if (entry.entryType === "symlink") return `${name} -> ${printable(entry.linkTarget ?? "")}`;
  return `${name}  ${entry.origSize} bytes` +
    (entry.compressed ? ` (gzip ${entry.payloadSize})` : "") +
    `  sha256=${entry.sha256.slice(0, 12)}`;
}

function human(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = bytes;
  for (const unit of units) {
    if (n < 1024 || unit === "TiB") return `${n.toFixed(2)}${unit}`;
    n /= 1024;
  }
  return `${n}`;
}

/**
 * A progress bar on stderr (cli-progress), or nothing when stderr is not a terminal.
 * cli-progress is imported here, not at the top: loading it costs ~30 ms of start-up
 * (`deno run -A cli.ts --version`: 63 ms with it, 51 ms without), paid by every run.
 */
async function progressBar(io: CliIo) {
  if (!io.isTerminal) return undefined;
  const { default: cliProgress } = await import("cli-progress");
  const bar = new cliProgress.SingleBar({
    format: "{bar} {value}/{total} entries | {file}",
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: false,
  }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    start(total: number) {
      bar.start(total, 0, { file: "" });
      started = true;
    },
    update(value: number, total: number | undefined, file: string) {
      if (!started) this.start(total ?? 0);
      if (total !== undefined) bar.setTotal(total);
      else if (value > bar.getTotal()) bar.setTotal(value);
      bar.update(value, { file: file.length > 40 ? "…" + file.slice(-39) : file });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
