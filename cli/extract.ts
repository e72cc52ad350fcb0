/**
 * `ctnr extract` and `ctnr verify` (an extraction that writes nothing).
 *
 * @module
 */

import {
  CtnrError,
  extractContainer,
  type ExtractOptions,
  type ExtractPlan,
  type ExtractProgress,
  IntegrityError,
  RemoteError,
  Selection,
  UsageError,
} from "../mod.ts";
import {
  type CommandSpec,
  type Flag,
  type FlagValues,
  helpText,
  integer,
  JSON_SUMMARY,
  messageWithFlags,
  parseCommand,
  quiet,
  refuseStatusFormatAlone,
  refuseStatusOnJsonStdout,
  refuseUnused,
  statusFormat,
  workers,
} from "./flags.ts";
import { type CliIo, logger, printable, printableMessage } from "./output.ts";
import { PROGRESS, ProgressDisplay, showExtractProgress } from "./progress.ts";
import type { RunSummary } from "./summary.ts";
import {
  openShardSet,
  parsePart,
  PART_FLAG,
  REMOTE_FLAGS,
  remoteOptions,
  remoteReport,
  SHARD_JOBS_FLAG,
  shownContainer,
} from "./_reader.ts";
import type { ShardRecord } from "../lib/shard/manifest.ts";
import type { ShardSet } from "../lib/shard/shard_set.ts";
import { count, size } from "./units.ts";

const CONTAINER = {
  name: "container",
  type: "string",
  arg: "FILE",
  origin: "original",
  help: "container to read",
} as const satisfies Flag;
const INDEX = {
  name: "index",
  type: "string",
  arg: "FILE",
  origin: "original",
  option: "index",
  help: "external index (preferred over the embedded one)",
} as const satisfies Flag;
const CHUNK_SIZE = {
  name: "chunk-size",
  type: "string",
  arg: "BYTES",
  origin: "original",
  option: "chunkSize",
  help:
    "read size for large payloads, minimum 1024 (default 1048576\nfor compressed ones, else 4194304)",
} as const satisfies Flag;
const TQDM = {
  name: "tqdm",
  type: "boolean",
  origin: "original",
  help: "show progress on stderr (the same as --progress)",
} as const satisfies Flag;
const STATUS_FILE = {
  name: "status-file",
  type: "string",
  arg: "FILE",
  origin: "original",
  option: "statusFile",
  help: "rewrite a status file about once a second",
} as const satisfies Flag;
const STATUS_FORMAT = {
  name: "status-format",
  type: "string",
  arg: "kv|json",
  origin: "original",
  option: "statusFormat",
  help: "format of the status file (default kv)",
} as const satisfies Flag;
const VERBOSE = {
  name: "verbose",
  short: "v",
  type: "boolean",
  multiple: true,
  origin: "original",
  help: "-v: where the index was loaded from, each entry skipped; -vv: also\neach entry done",
} as const satisfies Flag;
const LOOKBACK = {
  name: "lookback",
  type: "string",
  arg: "BYTES",
  origin: "original",
  help: "accepted for compatibility; ctnr finds any index without a window",
} as const satisfies Flag;
const KEEP_GOING = {
  name: "keep-going",
  type: "boolean",
  origin: "ctnr",
  option: "keepGoing",
  help: "go on after an entry fails (exit code is still 1)",
} as const satisfies Flag;
const SALVAGE = {
  name: "salvage",
  type: "boolean",
  origin: "ctnr",
  option: "salvage",
  help: "of a container cut short, extract every entry whose payload\nsurvives (verified) and " +
    "list the others on stdout, one a\nline; reads what is left of a cut trailer; exit 1 if " +
    "any is\nleft out",
} as const satisfies Flag;
const LENIENT = {
  name: "lenient",
  type: "boolean",
  origin: "ctnr",
  option: "lenient",
  help: "skip malformed index lines with a warning (the original's behaviour)",
} as const satisfies Flag;
const ALLOW_UNSAFE_LINKS = {
  name: "allow-unsafe-links",
  type: "boolean",
  origin: "ctnr",
  option: "allowUnsafeLinks",
  help: "accept symlinks that point outside the output folder (extract makes them)",
} as const satisfies Flag;

/** The flags of `extract`. */
export const EXTRACT = {
  name: "extract",
  usage: "ctnr extract --container FILE --outdir DIR [options] [PATTERN...]",
  originalHeading:
    "Options of the original extract_container_updated.py (same names, same meaning):",
  flags: [
    CONTAINER,
    INDEX,
    {
      name: "outdir",
      type: "string",
      arg: "DIR",
      origin: "original",
      help: "output folder (created when missing)",
    },
    CHUNK_SIZE,
    TQDM,
    STATUS_FILE,
    STATUS_FORMAT,
    {
      name: "skip-existing",
      type: "boolean",
      origin: "original",
      option: "skipExisting",
      help: "skip a target that exists with size orig_size",
    },
    {
      name: "verify-existing",
      type: "boolean",
      origin: "original",
      option: "verifyExisting",
      help: "skip it only when its SHA-256 matches (implies --skip-existing)",
    },
    VERBOSE,
    {
      name: "dry-run",
      type: "boolean",
      origin: "original",
      option: "dryRun",
      help: "read and verify every payload, write nothing",
    },
    LOOKBACK,
    KEEP_GOING,
    SALVAGE,
    LENIENT,
    ALLOW_UNSAFE_LINKS,
    PROGRESS,
    {
      name: "same-permissions",
      short: "p",
      type: "boolean",
      origin: "ctnr",
      option: "samePermissions",
      help: "modes exactly as recorded, the umask not taken off (as tar -p;\nthe default for root)",
    },
    {
      name: "fsync",
      type: "boolean",
      origin: "ctnr",
      option: "fsync",
      help: "fsync each file before its rename, and each folder at the end",
    },
    {
      name: "concurrency",
      type: "string",
      arg: "N",
      origin: "ctnr",
      option: "concurrency",
      help: "write workers, 0 to 16 (default 2; 0 writes on the main thread)",
    },
    quiet("--salvage's list, --json"),
    JSON_SUMMARY,
    PART_FLAG,
    SHARD_JOBS_FLAG,
    ...REMOTE_FLAGS,
  ],
} as const satisfies CommandSpec;

/**
 * The flags of `verify`: the reading flags of `extract` that it uses. It checks every entry
 * (always going on after a fault, as `sha256sum -c` does) and names each fault; the flags that
 * only matter when writing (`--outdir`, `--skip-existing`, `--fsync`, ...) or that change
 * nothing here (`--keep-going`, `--lookback`) are refused.
 */
export const VERIFY = {
  name: "verify",
  usage:
    "ctnr verify --container FILE [options] [PATTERN...]   (or: ctnr verify FILE [PATTERN...])",
  originalHeading: "Options of the original extractor (same names, same meaning):",
  flags: [
    CONTAINER,
    INDEX,
    // Verify streams every large payload through its check in pieces of this size.
    { ...CHUNK_SIZE, help: "read size for large payloads, minimum 1024 (default 1048576)" },
    TQDM,
    STATUS_FILE,
    STATUS_FORMAT,
    { ...VERBOSE, help: "-v: where the index was loaded from; -vv: also each entry verified" },
    { ...SALVAGE, help: "of a container cut short, check what survives (see extract)" },
    LENIENT,
    {
      ...ALLOW_UNSAFE_LINKS,
      help: "do not count symlinks that point outside the output folder as faults",
    },
    quiet("--salvage's list, --json"),
    JSON_SUMMARY,
    PROGRESS,
    PART_FLAG,
    SHARD_JOBS_FLAG,
    ...REMOTE_FLAGS,
  ],
} as const satisfies CommandSpec;

/**
 * Run `ctnr extract`, or `ctnr verify` when `verifyOnly`.
 *
 * @param args arguments after the command
 * @param io where to print
 * @param signal aborted with `SIGINT`/`SIGTERM`
 * @param verifyOnly verify: read and check every payload, write nothing
 * @param summary the `--json` summary, filled in as the run goes
 * @returns the exit code
 */
export async function runExtract(
  args: string[],
  io: CliIo,
  signal: AbortSignal,
  verifyOnly: boolean,
  summary: RunSummary,
): Promise<number> {
  const spec = verifyOnly ? VERIFY : EXTRACT;
  const parsed = verifyOnly ? parseCommand(VERIFY, args) : parseCommand(EXTRACT, args);
  // The verify table is a subset of extract's: its values read as extract's.
  const values: FlagValues<typeof EXTRACT.flags> & { help?: boolean } = parsed.values;
  if (values.help) {
    io.stdout(helpText(spec));
    return 0;
  }
  summary.json = values.json ?? false;
  // The positionals: CONTAINER (and OUTDIR for extract), when the flags do not give them.
  const rest = [...parsed.positionals];
  const container = values.container ?? rest.shift();
  const outdir = verifyOnly ? "." : values.outdir ?? rest.shift();
  // In every summary, also one of a run refused for its options.
  summary.set({
    container: shownContainer(container),
    ...(verifyOnly ? {} : { outdir: outdir ?? null }),
  });
  // What is left are patterns (README "Selecting entries"), checked before the container is read.
  const selection = rest.length > 0 ? new Selection(rest) : undefined;
  if (container === undefined) throw new UsageError("Missing --container FILE");
  if (outdir === undefined) throw new UsageError("Missing --outdir DIR");
  if (values.lookback !== undefined) integer("--lookback", values.lookback);
  const verbosity = values.verbose?.length ?? 0;
  const quiet = values.quiet ?? false;
  if (quiet && verbosity > 0) throw new UsageError("Options --quiet and --verbose contradict");
  // Lines printed through `io` from here on go above the progress bar.
  using progress = values.progress || values.tqdm ? new ProgressDisplay(io) : undefined;
  if (progress) io = progress.io;
  // With --json, stdout holds the summary alone: the lines for people go to stderr.
  const human: CliIo = summary.json ? { ...io, stdout: io.stderr } : io;
  const log = logger(human, quiet ? -1 : verbosity);
  refuseStatusFormatAlone(values);
  await refuseStatusOnJsonStdout(values["status-file"], summary.json);
  if (values["dry-run"]) {
    refuseUnused(
      values,
      ["skip-existing", "verify-existing", "same-permissions", "fsync", "concurrency"],
      "with --dry-run (it writes nothing: every payload is read and verified)",
    );
  }
  const dryRun = verifyOnly || (values["dry-run"] ?? false);
  const salvage = values.salvage ?? false;
  // verify checks every entry; --salvage goes on past the entries it leaves out.
  const keepGoing = verifyOnly || salvage || (values["keep-going"] ?? false);
  const options: SetExtractOptions = {
    dryRun,
    skipExisting: values["skip-existing"] ?? false,
    verifyExisting: values["verify-existing"] ?? false,
    keepGoing,
    salvage,
    lenient: values.lenient ?? false,
    allowUnsafeLinks: values["allow-unsafe-links"] ?? false,
    fsync: values.fsync ?? false,
    signal,
    statusFormat: statusFormat(values["status-format"]),
    onWarning: (warning) => {
      summary.warning(warning);
      io.stderr(`ctnr: warning: ${printableMessage(warning.message)}`);
    },
  };
  const counts = { extracted: 0, skipped: 0, failed: 0, bytes: 0 };
  let plan: ExtractPlan | undefined;
  const remote = await remoteOptions(values, signal, container);
  options.remote = remote;
  summary.set({ dry_run: dryRun });
  summary.setLive(() => ({
    ...extractFields(plan, counts, verifyOnly, salvage),
    ...remoteReport(remote.stats)?.fields,
  }));
  // Without keepGoing the run stops at the first fault, which the caller prints once. With it,
  // each fault is one line on stderr naming the entry; --salvage lists every entry it did not
  // restore on stdout, one a line (those past the cut are not each explained: the summary is).
  options.onEntryError = (entry, error) => {
    counts.failed++;
    const message = messageWithFlags(error, [EXTRACT, VERIFY]);
    summary.fault({ code: error.code, message, relpath: entry.relpath });
    if (!keepGoing) return; // the run stops: its error is printed once, by cli.ts
    // A fault of the server or the machine stops the run too (lib/extract/job.ts).
    if (error instanceof RemoteError || error.code === "ENVIRONMENT") return;
    if (salvage) human.stdout(printable(entry.relpath));
    if (!salvage || error.code !== "CONTAINER_CUT") {
      io.stderr(`ctnr: error: ${printableMessage(message)}`);
    }
  };
  if (values.index !== undefined) options.index = values.index;
  if (values["status-file"] !== undefined) options.statusFile = values["status-file"];
  if (values["chunk-size"] !== undefined) {
    options.chunkSize = integer("--chunk-size", values["chunk-size"]);
  }
  if (values.concurrency !== undefined) options.concurrency = workers(values.concurrency);
  if (values["same-permissions"]) options.samePermissions = true;
  if (selection !== undefined) options.select = selection;
  if (progress) {
    options.onProgress = showExtractProgress(progress, dryRun ? "verifying" : "writing");
  }
  options.onPlan = (planned) => {
    plan = planned;
    // The index's entries, and with patterns how many they select.
    const held = count(planned.indexEntries, "entry", "entries") +
      (selection === undefined ? "" : `, ${planned.entries + planned.leftOut} selected`);
    log(
      1,
      planned.indexOrigin !== "trailer"
        ? `Loaded index from ${printable(planned.indexPath)} (${held})`
        : `Loaded embedded index (${held})`,
    );
  };
  const verb = dryRun ? "Verified" : "Extracted";
  options.onEntry = (entry, action) => {
    if (action === "skipped") counts.skipped++;
    else {
      counts.extracted++;
      if (entry.entryType === "file") counts.bytes += entry.origSize;
    }
    if (action === "skipped") {
      log(
        1,
        `${
          options.verifyExisting
            ? "Skipping existing verified file"
            : "Skipping existing file (size match)"
        }: ${printable(entry.relpath)}`,
      );
    } else if (verbosity >= 2) {
      // As create's Completed lines: folders end with `/`, links show their target.
      const name = printable(entry.relpath);
      log(
        2,
        `${verb} entry: ${
          entry.entryType === "dir"
            ? `${name}/ (folder)`
            : entry.entryType === "symlink"
            ? `${name} -> ${printable(entry.linkTarget ?? "")} (link)`
            : `${name} (offset=${entry.offset} size=${entry.payloadSize})`
        }`,
      );
    }
  };
  const set = await openShardSet(container, values.index, remote);
  // One container is a set of one part: --part 0/1 is all of it.
  if (set === undefined && values.part !== undefined && parsePart(values.part).count !== 1) {
    throw new UsageError(
      `Option --part ${values.part} goes with a shard set (a manifest, NAME.manifest.json); ` +
        `one container is one part (0/1)`,
    );
  }
  const jobs = values["shard-jobs"] === undefined
    ? 2
    : integer("--shard-jobs", values["shard-jobs"]);
  if (jobs < 1 || jobs > 64) {
    throw new UsageError(`Option --shard-jobs takes 1 to 64, got ${values["shard-jobs"]}`);
  }
  const shards = set?.shards(values.part === undefined ? undefined : parsePart(values.part));
  let unreadEntries = 0; // of shards that could not be read at all
  if (set !== undefined) {
    summary.set({ shards: shards!.length });
    // The plans of the shards, added up: the run's counts are those of one container.
    let sum: ExtractPlan | undefined;
    const onShardPlan = options.onPlan!;
    options.onPlan = (planned) => {
      onShardPlan(planned);
      plan = sum = sum === undefined ? planned : addPlans(sum, planned);
    };
    options.onShardFault = (error, unread) => {
      counts.failed += Math.max(unread, 1);
      unreadEntries += unread;
      const fault = messageWithFlags(error, [EXTRACT, VERIFY]);
      summary.fault({ code: error.code, message: fault });
      io.stderr(`ctnr: error: ${printableMessage(fault)}`);
    };
  }
  try {
    if (set === undefined) await extractContainer(container, outdir, options);
    else await extractShards(set, shards!, outdir, options, jobs);
  } catch (error) {
    if (!(error instanceof CtnrError)) throw error;
    if (endsRun(error)) throw error;
    // The patterns were tried on every entry once the plan is made (the index read whole):
    // before that, "matched no entry" would be false.
    if (plan !== undefined) reportUnmatched(selection, io, "entry", summary);
    if (!keepGoing) throw error;
    const cut = salvage && error.code === "CONTAINER_CUT";
    if (counts.failed === 0 && !cut) throw error;
    progress?.stop();
    const entries = (plan === undefined ? 0 : plan.entries + plan.leftOut) + unreadEntries;
    let message: string;
    if (cut) {
      message = error.message +
        (counts.failed > 0
          ? `; the ${count(counts.failed, "entry", "entries")} not restored ${
            counts.failed === 1 ? "is" : "are"
          } listed on ${summary.json ? "stderr" : "stdout"}`
          : "");
    } else if (verifyOnly) {
      message = `verify: ${counts.failed} of ${count(entries, "entry", "entries")} failed ` +
        `(named above); ${counts.extracted} verified`;
    } else {
      message = `${dryRun ? "verification" : "extraction"} incomplete: ${
        count(counts.failed, "entry", "entries")
      } failed (named above); the rest was ${dryRun ? "verified" : "extracted"}`;
    }
    summary.fail({ code: error.code, message });
    io.stderr(`ctnr: ${printableMessage(message)}`);
    return error.exitCode;
  } finally {
    progress?.stop();
    const report = remoteReport(remote.stats);
    if (report !== undefined) log(1, report.line);
  }
  const done = counts.extracted + counts.skipped;
  const unmatched = reportUnmatched(selection, io, "entry", summary);
  if (dryRun) {
    log(
      0,
      `Verified ${count(done, "entry", "entries")}, ${size(counts.bytes)}: ` +
        `all payloads match their SHA-256`,
    );
  } else {
    log(0, "Done.");
    log(
      0,
      `Extracted ${counts.extracted} of ${count(plan!.entries, "entry", "entries")} (` +
        `${count(plan!.files, "file")}, ${count(plan!.dirs, "folder")}, ${
          count(plan!.symlinks, "link")
        }), ${size(counts.bytes)}` +
        (counts.skipped > 0 ? `; skipped ${counts.skipped} already there` : ""),
    );
  }
  if (unmatched) {
    summary.fail({
      code: "NOT_FOUND",
      message: `${count(selection!.unmatched.length, "pattern")} matched no entry`,
    });
    return 1;
  }
  return 0;
}

/**
 * Name each pattern that selected no entry, one line each on stderr (as tar names a member
 * not found, after doing the rest).
 *
 * @param selection the patterns given, if any
 * @param io where to print
 * @param what what the patterns were to select
 * @param summary the `--json` summary, which lists each as a `NOT_FOUND` fault
 * @returns whether any pattern selected nothing (exit 1: the code of an entry not found)
 */
export function reportUnmatched(
  selection: Selection | undefined,
  io: CliIo,
  what = "entry",
  summary?: RunSummary,
): boolean {
  const unmatched = selection?.unmatched ?? [];
  for (const pattern of unmatched) {
    const message = `pattern "${pattern}" matched no ${what}`;
    summary?.fault({ code: "NOT_FOUND", message });
    io.stderr(`ctnr: ${printableMessage(message)}`);
  }
  return unmatched.length > 0;
}

/**
 * The summary fields of an extract or verify, finished or not (README "Output for scripts").
 * The counts by kind and the totals are the index's, entries past a cut included; those entries
 * are `left_out` with `--salvage`, else `failed` (never both).
 */
function extractFields(
  plan: ExtractPlan | undefined,
  counts: { extracted: number; skipped: number; failed: number; bytes: number },
  verifyOnly: boolean,
  salvage: boolean,
): Record<string, unknown> {
  const leftOut = plan?.leftOut ?? 0;
  return {
    index_entries: plan?.indexEntries ?? 0,
    entries: (plan?.entries ?? 0) + leftOut,
    files: (plan?.files ?? 0) + leftOut,
    folders: plan?.dirs ?? 0,
    links: plan?.symlinks ?? 0,
    [verifyOnly ? "verified" : "extracted"]: counts.extracted,
    ...(verifyOnly ? {} : { skipped: counts.skipped }),
    failed: salvage ? counts.failed - leftOut : counts.failed,
    left_out: salvage ? leftOut : 0,
    orig_bytes: counts.bytes,
    total_orig_bytes: (plan?.totalBytes ?? 0) + (plan?.leftOutBytes ?? 0),
    stored_bytes: (plan?.payloadBytes ?? 0) + (plan?.leftOutPayloadBytes ?? 0),
  };
}

/**
 * Whether a fault ends the run whatever `--keep-going` says (of one container, or of a set):
 * Ctrl-C, a fault of the machine, or of the server.
 */
function endsRun(error: CtnrError): boolean {
  return error.code === "INTERRUPTED" || error.code === "ENVIRONMENT" ||
    error instanceof RemoteError;
}

/** {@link ExtractOptions}, and where a set's run reports a shard that cannot be read at all. */
type SetExtractOptions = ExtractOptions & {
  onShardFault?: (error: CtnrError, unread: number) => void;
};

/**
 * Extract (or verify) the shards of a set into one output folder, `jobs` shards at a time, in
 * manifest order; each shard's index is checked against the manifest before it is read. A
 * fault names its shard. Without `keepGoing` no shard starts after the first fault (those
 * running finish) and that fault is thrown; with it, a shard that cannot be read at all is
 * passed to `onShardFault` and the others go on, and the first fault is thrown at the end. A
 * fault of the server, the network or the machine (and Ctrl-C) starts no other shard.
 */
async function extractShards(
  set: ShardSet,
  shards: ShardRecord[],
  outdir: string,
  options: SetExtractOptions,
  jobs: number,
): Promise<void> {
  let next = 0;
  let first: unknown;
  let stopped = false;
  // One progress for the set: each shard's counts added up, shards read at once included.
  const onProgress = options.onProgress === undefined
    ? undefined
    : setProgress(options.onProgress, shards);
  const run = async () => {
    while (next < shards.length && (first === undefined || options.keepGoing)) {
      const shard = shards[next++]!;
      const location = set.location(shard);
      let failed = 0;
      let planned: ExtractPlan | undefined;
      const shardOptions: ExtractOptions = {
        ...options,
        ...(onProgress === undefined ? {} : { onProgress: onProgress(shard) }),
        expectIndex: set.expectIndex(shard),
        onPlan: (plan) => {
          planned = plan;
          options.onPlan?.(plan);
        },
        onEntryError: (entry, error) => {
          failed++;
          options.onEntryError?.(entry, shardFault(error, location));
        },
      };
      try {
        await extractContainer(location, outdir, shardOptions);
        if (planned !== undefined && planned.indexEntries !== shard.entries) {
          throw new IntegrityError(
            `Cannot read "${location}": its index holds ` +
              `${count(planned.indexEntries, "entry", "entries")}, the manifest says ` +
              `${shard.entries} ("entries")`,
          );
        }
        // cat trusts these to find a shard (lib/shard/manifest.ts shardFor): checked here.
        for (const field of ["first", "last"] as const) {
          if (planned !== undefined && planned.indexRange[field] !== shard[field]) {
            throw new IntegrityError(
              `Cannot read "${location}": its index's ${field} entry is ` +
                `"${planned.indexRange[field]}", the manifest says "${shard[field]}" ("${field}")`,
            );
          }
        }
      } catch (error) {
        const fault = error instanceof CtnrError ? shardFault(error, location) : error;
        if (!(fault instanceof CtnrError) || endsRun(fault) || fault.code === "USAGE") {
          // It stops the run, and is the fault reported (over a shard's fault before it).
          if (!stopped) first = fault;
          stopped = true;
          next = shards.length;
          continue;
        }
        first ??= fault;
        // The entries of a shard never read count as failed, each.
        const unread = planned === undefined ? shard.entries : 0;
        if (options.keepGoing && failed === 0) options.onShardFault?.(fault, unread);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, shards.length) }, run));
  if (first !== undefined) throw first;
}

/**
 * The progress of a set's extraction as one run's: entries done and to do summed over the
 * shards (a shard's totals once it has planned; until then its manifest entry count, and no
 * byte total for the set), in the writing phase from the start. Review: each shard drew bars
 * of its own, two shards at once shared one ("26/4 entries"). Returns the callback for a shard.
 */
function setProgress(
  report: (progress: ExtractProgress) => void,
  shards: readonly ShardRecord[],
): (shard: ShardRecord) => (progress: ExtractProgress) => void {
  // What each shard that has planned adds to the sums, taken back out when it reports again:
  // the sums are kept up to date per call, not added up over every shard per entry.
  const shares = new Map<ShardRecord, Pick<ExtractProgress, "entriesDone" | "bytesDone">>();
  let unplanned = shards.length;
  let plannedBytes = 0;
  const sum: ExtractProgress = {
    phase: "writing",
    indexBytesRead: 0,
    indexBytes: 0,
    entriesDone: 0,
    bytesDone: 0,
    totalEntries: shards.reduce((total, shard) => total + shard.entries, 0),
    totalBytes: 0,
    currentEntry: "",
  };
  return (shard) => (progress) => {
    if (progress.phase !== "planning") {
      let share = shares.get(shard);
      if (share === undefined) {
        // Planned: its plan's totals replace its manifest entry count.
        share = { entriesDone: 0, bytesDone: 0 };
        shares.set(shard, share);
        unplanned--;
        sum.totalEntries += progress.totalEntries - shard.entries;
        plannedBytes += progress.totalBytes;
      }
      sum.entriesDone += progress.entriesDone - share.entriesDone;
      sum.bytesDone += progress.bytesDone - share.bytesDone;
      share.entriesDone = progress.entriesDone;
      share.bytesDone = progress.bytesDone;
    }
    // Bytes to do are known once every shard has planned; until then the entries tell.
    sum.totalBytes = unplanned > 0 ? 0 : plannedBytes;
    if (progress.currentEntry !== "") sum.currentEntry = progress.currentEntry;
    report(sum);
  };
}

/** `error` with the shard named in front of its message, when the message does not name it. */
function shardFault(error: CtnrError, location: string): CtnrError {
  // A remote fault names its URL and stays a RemoteError: it stops the run (see runExtract).
  if (
    error.message.includes(location) || error.code === "INTERRUPTED" ||
    error.code === "USAGE" || error instanceof RemoteError
  ) return error;
  return new CtnrError(error.code, `shard "${location}": ${error.message}`, error.exitCode, {
    options: error.options,
    cause: error,
  });
}

/** Two shards' plans as one (counts added up; `next`'s index path): the run's plan so far. */
function addPlans(sum: ExtractPlan, next: ExtractPlan): ExtractPlan {
  const both: ExtractPlan = { ...next };
  const keys = [
    "entries",
    "indexEntries",
    "files",
    "dirs",
    "symlinks",
    "totalBytes",
    "payloadBytes",
    "unsafeLinks",
    "leftOut",
    "leftOutBytes",
    "leftOutPayloadBytes",
  ] as const;
  for (const key of keys) both[key] = sum[key] + next[key];
  both.payloadEnd = Math.max(sum.payloadEnd, next.payloadEnd);
  return both;
}
