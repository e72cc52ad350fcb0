/**
 * `ctnr create`: pack a folder into a container, or `--finalize-only`.
 *
 * @module
 */

import {
  createContainer,
  type CreateOptions,
  type CreateResult,
  CtnrError,
  finalizeContainer,
  type IndexEntry,
  InterruptedError,
  type PrescanTotals,
  UsageError,
} from "../mod.ts";
import {
  type CommandSpec,
  helpText,
  integer,
  JSON_SUMMARY,
  parseCommand,
  quiet,
  refuseStatusFormatAlone,
  refuseStatusOnJsonStdout,
  refuseUnused,
  statusFormat,
  workers,
} from "./flags.ts";
import { type CliIo, logger, printable, printableMessage } from "./output.ts";
import { PROGRESS, ProgressDisplay, showCreateProgress } from "./progress.ts";
import type { RunSummary } from "./summary.ts";
import { count, size } from "./units.ts";
import { stoppedBy } from "../lib/errors.ts";
import { createShards, type ShardOptions, type ShardResult } from "../lib/shard/create_shards.ts";
import { parsePart } from "./_reader.ts";

/** The flags of `create`. */
export const CREATE = {
  name: "create",
  usage: "ctnr create --src DIR --container FILE [options]",
  originalHeading: "Options of the original create_container.py (same names, same meaning):",
  flags: [
    {
      name: "src",
      type: "string",
      arg: "DIR",
      origin: "original",
      help: "folder to pack (refused with --finalize-only)",
    },
    {
      name: "container",
      type: "string",
      arg: "FILE",
      origin: "original",
      help: "container to write, or to continue when it exists (resume)",
    },
    {
      name: "index",
      type: "string",
      arg: "FILE",
      origin: "original",
      option: "index",
      help: "NDJSON index (default: <container>.idx)",
    },
    {
      name: "compress",
      type: "boolean",
      origin: "original",
      option: "compress",
      help: "store each payload as one gzip member",
    },
    {
      name: "tqdm",
      type: "boolean",
      origin: "original",
      help: "show progress on stderr (the same as --progress)",
    },
    {
      name: "count",
      type: "boolean",
      origin: "original",
      help: "count the entries first (progress total) and print the count\n(not with -q)",
    },
    {
      name: "scan-sizes",
      type: "boolean",
      origin: "original",
      help:
        "count the entries and bytes first (progress total and ETA)\nand print them (not with -q)",
    },
    {
      name: "print-each",
      type: "boolean",
      origin: "original",
      help: "print each entry as it is committed (Completed: ...)",
    },
    {
      name: "status-file",
      type: "string",
      arg: "FILE",
      origin: "original",
      option: "statusFile",
      help: "rewrite a status file about once a second",
    },
    {
      name: "status-format",
      type: "string",
      arg: "kv|json",
      origin: "original",
      option: "statusFormat",
      help: "format of the status file (default kv)",
    },
    {
      name: "fsync-every",
      type: "string",
      arg: "N",
      origin: "original",
      option: "fsyncEvery",
      help:
        "fsync the container every N entries (default 1000, or\n--index-batch when that is smaller)",
    },
    {
      name: "index-batch",
      type: "string",
      arg: "N",
      origin: "original",
      option: "indexBatch",
      help: "commit the index every N entries, N >= --fsync-every (default: --fsync-every)",
    },
    {
      name: "chunk-size",
      type: "string",
      arg: "BYTES",
      origin: "original",
      option: "chunkSize",
      help:
        "read size for large files, minimum 1024 (default 1048576\nwith --compress, else 4194304)",
    },
    {
      name: "verbose",
      short: "v",
      type: "boolean",
      multiple: true,
      origin: "original",
      help:
        "-v: each entry as it is added ([n] Appending: ...); -vv: also\neach as it is committed (as --print-each)",
    },
    {
      name: "dry-run",
      type: "boolean",
      origin: "original",
      option: "dryRun",
      help: "read, hash and compress, write nothing",
    },
    {
      name: "finalize",
      type: "boolean",
      origin: "original",
      option: "finalize",
      help: "embed the index as a trailer when done",
    },
    {
      name: "finalize-only",
      type: "boolean",
      origin: "original",
      help: "only embed the existing index, pack nothing (--src and the\npacking options " +
        "are refused)",
    },
    {
      name: "remove-index-on-finalize",
      type: "boolean",
      origin: "original",
      option: "removeIndexOnFinalize",
      help: "delete the standalone index after embedding it (with --finalize\nor --finalize-only)",
    },
    {
      name: "symlinks",
      type: "string",
      arg: "store|skip",
      origin: "ctnr",
      option: "symlinks",
      help: "record symlinks as links (default) or leave them out",
    },
    {
      name: "no-empty-dirs",
      type: "boolean",
      origin: "ctnr",
      option: "emptyDirs",
      help: "do not record empty folders",
    },
    {
      name: "compat",
      type: "boolean",
      origin: "ctnr",
      help:
        "only entries the original extractor reads (= --symlinks skip --no-empty-dirs,\nand no entries for folders of mode other than 0755)",
    },
    {
      name: "concurrency",
      type: "string",
      arg: "N",
      origin: "ctnr",
      option: "concurrency",
      help: "read workers, 0 to 16 (default 1, 2 with --compress; 0 reads\non the main thread)",
    },
    {
      name: "new",
      type: "boolean",
      origin: "ctnr",
      option: "fresh",
      help: "start the container anew, dropping what it holds (only over a\nctnr container)",
    },
    {
      name: "append",
      type: "boolean",
      origin: "ctnr",
      option: "append",
      help: "add a source that shares no path with the container's entries\n(else refused)",
    },
    {
      name: "include",
      type: "string",
      multiple: true,
      arg: "PATTERN",
      origin: "ctnr",
      option: "include",
      help: "store only what PATTERN selects, and the folders on the way\n" +
        '(repeatable; README "Selecting entries"); a pattern that\nselects nothing: exit 1',
    },
    {
      name: "exclude",
      type: "string",
      multiple: true,
      arg: "PATTERN",
      origin: "ctnr",
      option: "exclude",
      help: "leave out what PATTERN selects, and never enter such a folder\n" +
        "(repeatable; wins over --include): '*.tmp', node_modules, /build",
    },
    {
      name: "exclude-from",
      type: "string",
      multiple: true,
      arg: "FILE",
      origin: "ctnr",
      help: "--exclude each line of FILE (blank lines and lines starting\nwith # are skipped)",
    },
    {
      name: "shard-size",
      type: "string",
      arg: "BYTES",
      origin: "ctnr",
      option: "shardSize",
      help: "write shards NAME-00000.ctnr, ... of at most BYTES of payloads each\n" +
        "(K, M, G, T: powers of 1024), then NAME.manifest.json",
    },
    {
      name: "shard-entries",
      type: "string",
      arg: "N",
      origin: "ctnr",
      option: "shardEntries",
      help: "write shards of at most N entries each (with or without --shard-size)",
    },
    {
      name: "part",
      type: "string",
      arg: "K/N",
      origin: "ctnr",
      option: "part",
      help: "make only part K (0 to N-1) of N: NAME-pK-of-N-00000.ctnr, ...,\n" +
        "NAME.part-K-of-N.manifest.json; --part N takes K from JOB_COMPLETION_INDEX,\n" +
        "SLURM_ARRAY_TASK_ID or AWS_BATCH_JOB_ARRAY_INDEX",
    },
    {
      name: "split",
      type: "string",
      arg: "hash|subtree",
      origin: "ctnr",
      option: "split",
      help: "with --part: an entry's part from its relpath (hash, default) or\n" +
        "from its first path component (subtree)",
    },
    quiet(
      "--print-each, --json; not the lines of --count and\n--scan-sizes, which still set the progress total",
    ),
    JSON_SUMMARY,
    PROGRESS,
  ],
} as const satisfies CommandSpec;

/** The flags `--finalize-only` uses; it refuses the others. */
const FINALIZE_ONLY_FLAGS: ReadonlySet<string> = new Set([
  "container",
  "index",
  "finalize",
  "finalize-only",
  "remove-index-on-finalize",
  "dry-run",
  "verbose",
  "quiet",
  "json",
]);

/**
 * Run `ctnr create`.
 *
 * @param args arguments after `create`
 * @param io where to print
 * @param signal aborted with `SIGINT`/`SIGTERM`
 * @param summary the `--json` summary, filled in as the run goes
 * @returns the exit code
 */
export async function runCreate(
  args: string[],
  io: CliIo,
  signal: AbortSignal,
  summary: RunSummary,
): Promise<number> {
  const { values, positionals } = parseCommand(CREATE, args);
  if (values.help) {
    io.stdout(helpText(CREATE));
    return 0;
  }
  summary.json = values.json ?? false;
  // The positionals: SRC and CONTAINER, when the flags do not give them (--finalize-only
  // packs nothing: its one positional is the container).
  const rest = [...positionals];
  const finalizeOnly = values["finalize-only"] ?? false;
  const src = finalizeOnly && values.container === undefined && rest.length === 1
    ? values.src
    : values.src ?? rest.shift();
  const container = values.container ?? rest.shift();
  summary.set({ container: container ?? null }); // in every summary, also of a refused run
  if (rest.length > 0) throw new UsageError(`Unexpected argument "${rest[0]}"`);
  if (finalizeOnly) {
    // Packing options would change nothing: refused, so that no one believes they did (a
    // --src given to --finalize-only is not packed).
    refuseUnused(
      { ...values, src },
      CREATE.flags.map((flag) => flag.name).filter((name) => !FINALIZE_ONLY_FLAGS.has(name)),
      "with --finalize-only (it only embeds the existing index; pack with create first)",
    );
  }
  refuseStatusFormatAlone(values);
  await refuseStatusOnJsonStdout(values["status-file"], summary.json);
  if (values.new && values.append) {
    throw new UsageError(
      "Options --new and --append contradict (--new starts the container anew, --append adds " +
        "to what it holds)",
    );
  }
  if (container === undefined) throw new UsageError("Missing --container FILE");
  const verbosity = values.verbose?.length ?? 0;
  const quiet = values.quiet ?? false;
  if (quiet && verbosity > 0) throw new UsageError("Options --quiet and --verbose contradict");
  const finalizing = values.finalize || values["finalize-only"];
  if (values["remove-index-on-finalize"] && !finalizing) {
    throw new UsageError(
      "Option --remove-index-on-finalize needs --finalize or --finalize-only (the index is " +
        "only removed once it is embedded)",
    );
  }
  // Lines printed through `io` from here on go above the progress bar.
  using progress = values.progress || values.tqdm ? new ProgressDisplay(io) : undefined;
  if (progress) io = progress.io;
  // With --json, stdout holds the summary alone: the lines for people go to stderr.
  const human: CliIo = summary.json ? { ...io, stdout: io.stderr } : io;
  const log = logger(human, quiet ? -1 : verbosity);
  const each = logger(human, 0); // asked for with --print-each: printed even with --quiet

  if (values["finalize-only"]) {
    summary.set({ finalize_only: true, dry_run: values["dry-run"] ?? false, finalized: false });
    if (values["dry-run"]) {
      log(0, "Dry-run: would finalize (no changes).");
      return 0;
    }
    const options: Parameters<typeof finalizeContainer>[1] = {
      removeIndex: values["remove-index-on-finalize"] ?? false,
    };
    if (values.index !== undefined) options.index = values.index;
    progress?.phase("finalizing");
    const written = await finalizeContainer(container, options);
    progress?.stop();
    summary.set({ finalized: written, container_bytes: (await Deno.stat(container)).size });
    log(0, written ? "Finalized container." : "Container already has a trailer; nothing to do.");
    return 0;
  }
  if (src === undefined) {
    throw new UsageError("Missing --src DIR (only --finalize-only works without it)");
  }

  let refusedNames = 0; // source errors that are names to rename, not unreadable items
  const options: CreateOptions = {
    compress: values.compress ?? false,
    dryRun: values["dry-run"] ?? false,
    finalize: values.finalize ?? false,
    removeIndexOnFinalize: values["remove-index-on-finalize"] ?? false,
    fresh: values.new ?? false,
    append: values.append ?? false,
    signal,
    statusFormat: statusFormat(values["status-format"]),
    onWarning: (warning) => {
      summary.warning(warning);
      io.stderr(`ctnr: warning: ${printableMessage(warning.message)}`);
    },
    onSourceError: (error) => {
      if (error.nameRefused) refusedNames++;
      summary.fault({
        code: error.code,
        message: error.message,
        ...(error.relpath === undefined ? {} : { relpath: error.relpath }),
      });
      io.stderr(`ctnr: error: ${printableMessage(error.message)}`);
    },
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
  if (values.include !== undefined) options.include = values.include;
  const exclude = [...(values.exclude ?? [])];
  for (const file of values["exclude-from"] ?? []) {
    exclude.push(...await readPatternFile(file, signal));
  }
  if (exclude.length > 0) options.exclude = exclude;
  if (values["scan-sizes"]) options.prescan = "sizes";
  else if (values.count) options.prescan = "count";
  if (options.prescan !== undefined) {
    const sizes = options.prescan === "sizes";
    options.onPrescan = (totals) => {
      summary.set({ prescan: prescanFields(totals, sizes) });
      // Not with --quiet: --count and --scan-sizes are asked for the progress total too
      // (the original tool's use), which -q --tqdm keeps without the line.
      log(
        0,
        sizes
          ? `Scan: ${entryKinds(totals)}, ${size(totals.bytes)} total`
          : `Count: ${entryKinds(totals)}`,
      );
    };
  }
  const symlinks = values.symlinks ?? (values.compat ? "skip" : "store");
  if (symlinks !== "store" && symlinks !== "skip") {
    throw new UsageError(`Option --symlinks must be "store" or "skip", got "${symlinks}"`);
  }
  options.symlinks = symlinks;
  options.emptyDirs = !(values["no-empty-dirs"] || values.compat);
  if (values.compat) options.folderModes = false;
  // The original tool's lines: "[n] Appending: rel" at -v as each entry is added; "Completed:
  // rel (size) sha=... offset=..." at -vv or with --print-each, here once it is committed (so a
  // line printed is an entry that survives a crash).
  if (values["print-each"] || verbosity >= 2) {
    options.onEntry = (entry) => each(0, completed(entry));
  }
  const show = progress && showCreateProgress(progress, options.prescan === "sizes");
  if (show || verbosity >= 1) {
    let added = 0;
    options.onProgress = (p) => {
      show?.(p);
      if (p.added === added) return; // a phase, a piece of a file, an item that added nothing
      added = p.added;
      log(1, `[${p.processedFiles}] Appending: ${printable(p.currentFile)}`);
    };
  }
  summary.set({ src, index: options.index ?? `${container}.idx`, dry_run: options.dryRun });
  const sharding = shardOptions(values);
  if (sharding !== undefined) {
    for (const flag of ["index", "append", "dry-run", "finalize", "remove-index-on-finalize"]) {
      if (values[flag as keyof typeof values] !== undefined) {
        throw new UsageError(
          `Option --${flag} does not work with --shard-size, --shard-entries or --part (each ` +
            `shard is finalized, its index embedded)`,
        );
      }
    }
  }
  let result: CreateResult;
  let shards: ShardResult | undefined;
  try {
    if (sharding !== undefined) {
      shards = await createShards(src, container, { ...options, ...sharding });
      result = shards;
    } else result = await createContainer(src, container, options);
  } catch (error) {
    // Stopped by a signal: what it committed is in the summary too.
    if (error instanceof InterruptedError && error.result !== undefined) {
      summary.set(createFields(error.result as CreateResult));
    }
    throw error;
  } finally {
    progress?.stop();
  }
  summary.set(createFields(result));
  log(0, `Done.${result.resumed ? " (resumed)" : ""}`);
  if (shards !== undefined) {
    summary.set({
      manifest: shards.manifestPath,
      shards: shards.manifest.shards.length,
      index: null,
    });
    log(
      0,
      `Shards: ${shards.manifest.shards.length}, manifest: ${printable(shards.manifestPath)}`,
    );
  } else if (!options.dryRun) {
    log(
      0,
      result.finalized
        ? `Index embedded in: ${printable(container)}`
        : `Index file (NDJSON): ${printable(result.indexPath)}`,
    );
  }
  if (shards === undefined) {
    log(0, `Container file: ${printable(container)} (dry-run=${options.dryRun})`);
  }
  const read = `(${size(result.origBytes)} read, ${size(result.payloadBytes)} stored)`;
  log(
    0,
    options.dryRun
      ? `Dry run, nothing written: would add ${count(result.added, "entry", "entries")} ` +
        `${read}, ${result.alreadyPresent} already present; the index would hold ` +
        count(result.totalEntries, "entry", "entries")
      : `Added ${count(result.added, "entry", "entries")} ${read}, ${result.alreadyPresent} ` +
        `already present, ${count(result.totalEntries, "entry", "entries")} in the index`,
  );
  if (result.leftOut > 0) log(0, `Left out ${count(result.leftOut, "item")} (see warnings)`);
  if (result.excluded > 0) {
    log(0, `Excluded ${count(result.excluded, "item")} (--include, --exclude)`);
  }
  for (const pattern of result.unmatched) {
    const message = `pattern "${pattern}" matched nothing in "${src}"`;
    summary.fault({ code: "NOT_FOUND", message });
    io.stderr(`ctnr: ${printableMessage(message)}`);
  }
  // Unreadable items and names a container cannot hold: both leave the container incomplete
  // (exit 3), each with its own advice.
  const unreadable = result.sourceErrors - refusedNames;
  if (unreadable > 0) {
    const message = `${
      count(unreadable, "source file or folder", "source files or folders")
    } could not be read; the container is incomplete (run create again to add ${
      unreadable === 1 ? "it" : "them"
    } once readable)`;
    summary.fail({ code: "SOURCE", message });
    io.stderr(`ctnr: ${printableMessage(message)}`);
  }
  if (refusedNames > 0) {
    const one = refusedNames === 1;
    const message = `${count(refusedNames, "source name")} cannot be stored (named above); the ` +
      `container is incomplete (rename ${one ? "it" : "them"} and run create again)`;
    if (summary.error === undefined) summary.fail({ code: "SOURCE", message });
    io.stderr(`ctnr: ${printableMessage(message)}`);
  }
  if (result.staleEntries > 0) {
    const one = result.staleEntries === 1;
    const message = `${count(result.staleEntries, "file")} changed after ${
      one ? "it was" : "they were"
    } committed; the container holds ${one ? "its" : "their"} older version (see warnings)`;
    if (summary.error === undefined) summary.fail({ code: "SOURCE", message });
    io.stderr(`ctnr: ${printableMessage(message)}`);
  }
  // A pattern that selects nothing is the user's mistake, as tar's "Not found in archive": the
  // code of an entry not found (cat, extract), before "incomplete".
  if (result.unmatched.length > 0) {
    summary.fail({
      code: "NOT_FOUND",
      message: `${count(result.unmatched.length, "include pattern")} matched nothing`,
    });
    return 1;
  }
  if (result.sourceErrors > 0 || result.staleEntries > 0) return 3;
  return 0;
}

/**
 * The sharding options the flags give, or `undefined` when none is given.
 *
 * @throws {UsageError} for a value out of range, or `--part N` with no scheduler variable set
 */
function shardOptions(
  values: {
    "shard-size"?: string;
    "shard-entries"?: string;
    part?: string;
    split?: string;
  },
): Pick<ShardOptions, "shardSize" | "shardEntries" | "part" | "split"> | undefined {
  const options: Pick<ShardOptions, "shardSize" | "shardEntries" | "part" | "split"> = {};
  if (values["shard-size"] !== undefined) options.shardSize = bytes(values["shard-size"]);
  if (values["shard-entries"] !== undefined) {
    options.shardEntries = integer("--shard-entries", values["shard-entries"]);
  }
  if (options.shardSize === 0) throw new UsageError("Option --shard-size must be at least 1");
  if (options.shardEntries === 0) throw new UsageError("Option --shard-entries must be at least 1");
  if (values.part === undefined) {
    if (values.split !== undefined) throw new UsageError("Option --split needs --part K/N");
    return Object.keys(options).length === 0 ? undefined : options;
  }
  options.part = parsePart(values.part);
  if (values.split !== undefined) {
    if (values.split !== "hash" && values.split !== "subtree") {
      throw new UsageError(`Option --split must be "hash" or "subtree", got "${values.split}"`);
    }
    options.split = values.split;
  }
  return options;
}

/** A size in bytes: a whole number, with K, M, G or T (KiB... powers of 1024) after it. */
function bytes(text: string): number {
  const match = /^(\d+)\s*(?:([KMGTkmgt])(?:i?B)?|B)?$/.exec(text);
  if (match === null) {
    throw new UsageError(`Option --shard-size takes BYTES (as 1000000, 64M, 1G), got "${text}"`);
  }
  const scale = match[2] === undefined ? 1 : 1024 ** ("KMGT".indexOf(match[2].toUpperCase()) + 1);
  const value = Number(match[1]) * scale;
  if (!Number.isSafeInteger(value)) {
    throw new UsageError(`Option --shard-size is too large: ${text}`);
  }
  return value;
}

/** `Completed: rel (size) sha=<12 hex> offset=N`, as the original prints it; folders and links. */
function completed(entry: IndexEntry): string {
  const name = printable(entry.relpath);
  if (entry.entryType === "dir") return `Completed: ${name}/ (folder)`;
  if (entry.entryType === "symlink") {
    return `Completed: ${name} -> ${printable(entry.linkTarget ?? "")} (link)`;
  }
  return `Completed: ${name} (${size(entry.payloadSize)}) sha=${entry.sha256.slice(0, 12)} ` +
    `offset=${entry.offset}`;
}

/** `6 entries (4 files, 1 folder, 1 link)`, or `4 files` when all are files. */
function entryKinds(totals: PrescanTotals): string {
  const files = count(totals.files, "file");
  if (totals.entries === totals.files) return files;
  return `${count(totals.entries, "entry", "entries")} (${files}, ${
    count(totals.folders, "folder")
  }, ${count(totals.links, "link")})`;
}

function prescanFields(totals: PrescanTotals, sizes: boolean): Record<string, number> {
  const fields: Record<string, number> = {
    entries: totals.entries,
    files: totals.files,
    folders: totals.folders,
    links: totals.links,
  };
  if (sizes) fields.bytes = totals.bytes;
  return fields;
}

/** The summary fields of a finished create (README "Output for scripts"). */
function createFields(result: CreateResult): Record<string, unknown> {
  return {
    index: result.indexPath,
    resumed: result.resumed,
    finalized: result.finalized,
    added: result.added,
    already_present: result.alreadyPresent,
    entries: result.totalEntries,
    left_out: result.leftOut,
    missing: result.missing,
    excluded: result.excluded,
    source_errors: result.sourceErrors,
    changed_since_commit: result.staleEntries,
    orig_bytes: result.origBytes,
    stored_bytes: result.payloadBytes,
    container_bytes: result.containerSize,
  };
}

/**
 * The patterns of an `--exclude-from` file: one a line, as tar's `-X` and rsync's
 * `--exclude-from` read them; blank lines and lines starting with `#` are skipped, a line's
 * other spaces kept (a CR before the newline and a UTF-8 byte-order mark are dropped). Read
 * asynchronously: a FIFO or a process substitution (`<(git ls-files -o)`) whose writer never
 * comes leaves the run waiting, and a signal still stops it.
 *
 * @param path the file
 * @param signal aborted with `SIGINT`/`SIGTERM`/`SIGHUP`
 * @returns its patterns
 * @throws {CtnrError} code `NOT_FOUND` (exit 1) when it cannot be read, naming it
 * @throws {InterruptedError} when `signal` aborts while it is read
 */
async function readPatternFile(path: string, signal: AbortSignal): Promise<string[]> {
  let text: string;
  try {
    text = await Deno.readTextFile(path, { signal });
  } catch (error) {
    if (signal.aborted) {
      throw new InterruptedError(stoppedBy(signal));
    }
    const detail = (error as Error).message.replace(/: [a-z]+ '.*$/s, "");
    throw new CtnrError("NOT_FOUND", `Cannot read --exclude-from "${path}": ${detail}`);
  }
  if (text.startsWith("\uFEFF")) text = text.slice(1);
  return text.split("\n")
    .map((line) => line.endsWith("\r") ? line.slice(0, -1) : line)
    .filter((line) => line !== "" && !line.startsWith("#"));
}
