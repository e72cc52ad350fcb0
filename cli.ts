/**
 * The `ctnr` command: dispatch to a command (cli/), signals, and exit codes.
 *
 * ```text
 * ctnr create  --src DIR --container FILE [--include P] [--exclude P] [options]
 * ctnr extract --container FILE --outdir DIR [options] [PATTERN...]
 * ctnr verify  --container FILE [options] [PATTERN...]
 * ctnr list    --container FILE [-l | --json] [PATTERN...]
 * ctnr info    --container FILE [--json]
 * ctnr cat     --container FILE PATTERN...
 * ```
 *
 * With `--json` (create, extract, verify, info), one JSON summary ends the run on stdout
 * (cli/summary.ts), also when it fails.
 *
 * Exit codes: 0 done; 1 a data fault (corrupt, unsafe, mismatch, conflict);
 * 2 a usage error; 3 created but incomplete (unreadable source files);
 * 4 another run is writing the container; 5 the machine failed (disk full, I/O error);
 * 129 SIGHUP; 130 SIGINT; 141 output closed; 143 SIGTERM.
 *
 * @module
 */

import { CtnrError, UsageError } from "./mod.ts";
import { CAT, runCat } from "./cli/cat.ts";
import { CREATE, runCreate } from "./cli/create.ts";
import { EXTRACT, runExtract, VERIFY } from "./cli/extract.ts";
import { messageWithFlags } from "./cli/flags.ts";
import { INFO, runInfo } from "./cli/info.ts";
import { LIST, runList } from "./cli/list.ts";
import { MANIFEST, runManifest } from "./cli/manifest.ts";
import { stopAtOnce } from "./cli/signals.ts";
import { RunSummary } from "./cli/summary.ts";
import { type CliIo, DEFAULT_IO, printableMessage, StdoutClosed } from "./cli/output.ts";
import { environmentFault } from "./lib/errors.ts";
// The version is written once, in deno.json (also read when cli.ts runs from a URL).
import denoJson from "./deno.json" with { type: "json" };

export type { CliIo } from "./cli/output.ts";

const VERSION: string = denoJson.version;

const COMMANDS = [CREATE, EXTRACT, VERIFY, LIST, INFO, CAT, MANIFEST];

const USAGE = `ctnr ${VERSION}: pack a folder tree into one verified container file (CTNRv1)

Usage:
  ctnr create  --src DIR --container FILE [options]   (or: ctnr create DIR FILE)
  ctnr extract --container FILE --outdir DIR [options] [PATTERN...]
                                                       (or: ctnr extract FILE DIR [PATTERN...])
  ctnr verify  --container FILE [options] [PATTERN...] (or: ctnr verify FILE [PATTERN...])
  ctnr list    --container FILE [-l | --json] [PATTERN...]
                                                       names, -l details, --json index lines
  ctnr info    --container FILE [--json]               totals, compression, where the index is
  ctnr cat     --container FILE PATTERN...             each file selected, to stdout
  ctnr manifest merge --out FILE PART_MANIFEST...      join the manifests of create --part K/N

PATTERN: a name at any depth (*.md, node_modules), or a path from the root (docs/*.md, /build);
a folder brings its subtree; create takes --include/--exclude PATTERN (README "Selecting entries").

Run "ctnr COMMAND --help" for the options of a command.
Exit codes: 0 ok, 1 data fault, 2 usage, 3 created but incomplete, 4 container busy,
5 disk full or I/O error, 129 SIGHUP, 130 SIGINT, 141 output closed, 143 SIGTERM.`;

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
  // SIGHUP (a closed terminal, a dropped ssh connection) is handled as SIGTERM is: the work
  // done is committed and the run ends, 129. A second signal ends the run at once (what was
  // committed stays; a later run sweeps its temp files). `list`, `info` and `cat` have nothing to
  // commit or clean up, so they take no signal: the default action ends them at once, even when they
  // are blocked writing into a pipe nobody reads (the JavaScript thread is then stuck in
  // write(2) and no listener could run).
  const signals = command === "list" || command === "cat" || command === "info"
    ? []
    : (["SIGINT", "SIGTERM", "SIGHUP"] as const);
  const summary = new RunSummary(command ?? "");
  for (const signal of signals) {
    const listener = () => {
      if (controller.signal.aborted) Deno.exit(stopAtOnce(signal, io, summary));
      controller.abort(signal);
    };
    try {
      Deno.addSignalListener(signal, listener);
      listeners.push([signal, listener]);
    } catch { /* not supported on this platform */ }
  }
  let code: number;
  try {
    code = await run(command, rest, io, controller.signal, summary);
  } catch (error) {
    code = report(error, io, command, summary);
  } finally {
    for (const [signal, listener] of listeners) Deno.removeSignalListener(signal, listener);
  }
  // With --json, the summary ends every run whose flags were read, failed or not; not one
  // whose stdout is gone (141).
  if (summary.json && code !== 141) {
    try {
      io.stdout(summary.toJson(code));
    } catch (error) {
      return report(error, io, command, undefined);
    }
  }
  return code;
}

/** Dispatch to the command; its exit code, or the error it ends with. */
async function run(
  command: string | undefined,
  rest: string[],
  io: CliIo,
  signal: AbortSignal,
  summary: RunSummary,
): Promise<number> {
  switch (command) {
    case "create":
      return await runCreate(rest, io, signal, summary);
    case "extract":
      return await runExtract(rest, io, signal, false, summary);
    case "verify":
      return await runExtract(rest, io, signal, true, summary);
    case "list":
      return await runList(rest, io);
    case "info":
      return await runInfo(rest, io, summary);
    case "cat":
      return await runCat(rest, io);
    case "manifest":
      return await runManifest(rest, io);
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
}

function helpCommand(command: string | undefined): string {
  return command !== undefined && COMMANDS.some((c) => c.name === command)
    ? `ctnr ${command} --help`
    : "ctnr --help";
}

/**
 * Print an error in one line (no stack trace for any fault ctnr expects), name it in the
 * summary, and pick the exit code.
 */
function report(
  error: unknown,
  io: CliIo,
  command: string | undefined,
  summary: RunSummary | undefined,
): number {
  if (error instanceof StdoutClosed) return 141; // `ctnr list | head`: quietly, as cat does
  const fault = describeError(error);
  io.stderr(`ctnr: ${printableMessage(fault.message)}`);
  if (fault.hint) io.stderr(`Run "${helpCommand(command)}" for usage.`);
  summary?.fail({ code: fault.code, message: fault.message });
  return fault.exitCode;
}

/** An error's code, message (flags named as the command line spells them) and exit code. */
function describeError(
  error: unknown,
): { code: string; message: string; exitCode: number; hint: boolean } {
  error = environmentFault(error, "ctnr", "what was committed is kept");
  if (error instanceof CtnrError) {
    return {
      code: error.code,
      message: messageWithFlags(error, COMMANDS),
      exitCode: error.exitCode,
      hint: error instanceof UsageError,
    };
  }
  if (
    error instanceof TypeError && (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
  ) {
    const unknown = /Unknown option '([^']*)'/.exec(error.message);
    const message = unknown ? `Unknown option "${unknown[1]}"` : error.message;
    return { code: "USAGE", message, exitCode: 2, hint: true };
  }
  if (error instanceof Deno.errors.NotCapable) {
    return {
      code: "USAGE",
      message: `Deno did not grant access: ${
        (error as Error).message.replace(/, run again.*$/, "")
      }; ${
        /net access/.test((error as Error).message)
          ? "a container on a server needs --allow-net (or --allow-net=HOST)"
          : "run ctnr with --allow-all (paths under /dev and /proc, such as /dev/shm, need it)"
      }`,
      exitCode: 2,
      hint: false,
    };
  }
  if (error instanceof Error && Object.values(Deno.errors).some((kind) => error instanceof kind)) {
    // An operating-system error (missing file, permission, a folder where a file should be):
    // the message names the path; no stack trace.
    return { code: "IO", message: error.message, exitCode: 1, hint: false };
  }
  return {
    code: "UNEXPECTED",
    message: `unexpected error: ${(error as Error)?.stack ?? error}`,
    exitCode: 1,
    hint: false,
  };
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
