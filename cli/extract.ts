/**
 * `ctnr extract` and `ctnr verify` (an extraction that writes nothing).
 *
 * @module
 */

import { CtnrError, extractContainer, type ExtractOptions, Selection, UsageError } from "../mod.ts";
import {
  type CommandSpec,
  type Flag,
  type FlagValues,
  helpText,
  integer,
  messageWithFlags,
  parseCommand,
  statusFormat,
  workers,
} from "./flags.ts";
import { type CliIo, human, logger, printable, printableMessage, progressBar } from "./output.ts";

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
  help: "show a progress bar on stderr",
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
  help: "more output (repeatable)",
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
  ],
} as const satisfies CommandSpec;

/**
 * The flags of `verify`: the reading flags of `extract`. It checks every entry (always going
 * on after a fault, as `sha256sum -c` does) and names each fault.
 */
export const VERIFY = {
  name: "verify",
  usage:
    "ctnr verify --container FILE [options] [PATTERN...]   (or: ctnr verify FILE [PATTERN...])",
  originalHeading: "Options of the original extractor (same names, same meaning):",
  flags: [
    CONTAINER,
    INDEX,
    CHUNK_SIZE,
    TQDM,
    STATUS_FILE,
    STATUS_FORMAT,
    VERBOSE,
    LOOKBACK,
    { ...KEEP_GOING, help: "accepted; verify always checks every entry" },
    { ...SALVAGE, help: "of a container cut short, check what survives (see extract)" },
    LENIENT,
    ALLOW_UNSAFE_LINKS,
  ],
} as const satisfies CommandSpec;

/**
 * Run `ctnr extract`, or `ctnr verify` when `verifyOnly`.
 *
 * @param args arguments after the command
 * @param io where to print
 * @param signal aborted with `SIGINT`/`SIGTERM`
 * @param verifyOnly verify: read and check every payload, write nothing
 * @returns the exit code
 */
export async function runExtract(
  args: string[],
  io: CliIo,
  signal: AbortSignal,
  verifyOnly: boolean,
): Promise<number> {
  const spec = verifyOnly ? VERIFY : EXTRACT;
  const parsed = verifyOnly ? parseCommand(VERIFY, args) : parseCommand(EXTRACT, args);
  // The verify table is a subset of extract's: its values read as extract's.
  const values: FlagValues<typeof EXTRACT.flags> & { help?: boolean } = parsed.values;
  if (values.help) {
    io.stdout(helpText(spec));
    return 0;
  }
  const rest = [...parsed.positionals];
  const container = values.container ?? rest.shift();
  const outdir = verifyOnly ? "." : values.outdir ?? rest.shift();
  // What is left are patterns (README "Selecting entries"), checked before the container is read.
  const selection = rest.length > 0 ? new Selection(rest) : undefined;
  if (container === undefined) throw new UsageError("Missing --container FILE");
  if (outdir === undefined) throw new UsageError("Missing --outdir DIR");
  if (values.lookback !== undefined) integer("--lookback", values.lookback);
  const verbosity = values.verbose?.length ?? 0;
  const log = logger(io, verbosity);
  const dryRun = verifyOnly || (values["dry-run"] ?? false);
  const salvage = values.salvage ?? false;
  // verify checks every entry; --salvage goes on past the entries it leaves out.
  const keepGoing = verifyOnly || salvage || (values["keep-going"] ?? false);
  const options: ExtractOptions = {
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
    onWarning: (warning) => io.stderr(`ctnr: warning: ${printableMessage(warning.message)}`),
  };
  // Without keepGoing the run stops at the first fault, which the caller prints once. With it,
  // each fault is one line on stderr naming the entry; --salvage lists every entry it did not
  // restore on stdout, one a line (those past the cut are not each explained: the summary is).
  let failed = 0;
  if (keepGoing) {
    options.onEntryError = (entry, error) => {
      failed++;
      if (salvage) io.stdout(printable(entry.relpath));
      if (!salvage || error.code !== "CONTAINER_CUT") {
        io.stderr(`ctnr: error: ${printableMessage(messageWithFlags(error, [EXTRACT, VERIFY]))}`);
      }
    };
  }
  if (values.index !== undefined) options.index = values.index;
  if (values["status-file"] !== undefined) options.statusFile = values["status-file"];
  if (values["chunk-size"] !== undefined) {
    options.chunkSize = integer("--chunk-size", values["chunk-size"]);
  }
  if (values.concurrency !== undefined) options.concurrency = workers(values.concurrency);
  if (values["same-permissions"]) options.samePermissions = true;
  if (selection !== undefined) options.select = selection;
  const bar = values.tqdm ? await progressBar(io) : undefined;
  let done = 0;
  let entries = 0;
  options.onPlan = (plan) => {
    entries = plan.entries + plan.leftOut;
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
    if (!keepGoing || !(error instanceof CtnrError)) throw error;
    if (error.code === "INTERRUPTED" || error.code === "ENVIRONMENT") throw error;
    reportUnmatched(selection, io);
    const summary = salvage && error.code === "CONTAINER_CUT";
    if (failed === 0 && !summary) throw error;
    bar?.stop();
    if (summary) {
      io.stderr(
        `ctnr: ${printableMessage(error.message)}` +
          (failed > 0 ? `; the ${failed} entries not restored are listed on stdout` : ""),
      );
    } else if (verifyOnly) {
      io.stderr(
        `ctnr: verify: ${failed} of ${entries} entries failed (named above); ` +
          `${entries - failed} verified`,
      );
    } else {
      io.stderr(
        `ctnr: ${dryRun ? "verification" : "extraction"} incomplete: ${failed} entries failed ` +
          `(named above); the rest was ${dryRun ? "verified" : "extracted"}`,
      );
    }
    return error.exitCode;
  } finally {
    bar?.stop();
  }
  const unmatched = reportUnmatched(selection, io);
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
  return unmatched ? 1 : 0;
}

/**
 * Name each pattern that selected no entry, one line each on stderr (as tar names a member
 * not found, after doing the rest).
 *
 * @param selection the patterns given, if any
 * @param io where to print
 * @param what what the patterns were to select
 * @returns whether any pattern selected nothing (exit 1: the code of an entry not found)
 */
export function reportUnmatched(
  selection: Selection | undefined,
  io: CliIo,
  what = "entry",
): boolean {
  const unmatched = selection?.unmatched ?? [];
  for (const pattern of unmatched) {
    io.stderr(`ctnr: pattern "${printableMessage(pattern)}" matched no ${what}`);
  }
  return unmatched.length > 0;
}
