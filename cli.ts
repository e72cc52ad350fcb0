/**
 * The `ctnr` command: dispatch to a command (cli/), signals, and exit codes.
 *
 * ```text
 * ctnr create  --src DIR --container FILE [--include P] [--exclude P] [options]
 * ctnr extract --container FILE --outdir DIR [options] [PATTERN...]
 * ctnr list    --container FILE [--index FILE] [--json] [PATTERN...]
 * ctnr verify  --container FILE [--index FILE] [PATTERN...]
 * ctnr cat     --container FILE PATTERN...
 * ```
 *
 * Exit codes: 0 done; 1 a data fault (corrupt, unsafe, mismatch, conflict);
 * 2 a usage error; 3 created but incomplete (unreadable source files);
 * 4 another run is writing the container; 5 the machine failed (disk full, I/O error);
 * 129 SIGHUP; 130 SIGINT; 141 output closed; 143 SIGTERM.
 *
 * @module
 */

import { CtnrError, InterruptedError, UsageError } from "./mod.ts";
import { CAT, runCat } from "./cli/cat.ts";
import { CREATE, runCreate } from "./cli/create.ts";
import { EXTRACT, runExtract, VERIFY } from "./cli/extract.ts";
import { messageWithFlags } from "./cli/flags.ts";
import { LIST, runList } from "./cli/list.ts";
import { type CliIo, DEFAULT_IO, printableMessage, StdoutClosed } from "./cli/output.ts";
import { environmentFault } from "./lib/errors.ts";

export type { CliIo } from "./cli/output.ts";

const VERSION = "0.1.0";

const COMMANDS = [CREATE, EXTRACT, VERIFY, LIST, CAT];

const USAGE = `ctnr ${VERSION}: pack a folder tree into one verified container file (CTNRv1)

Usage:
  ctnr create  --src DIR --container FILE [options]   (or: ctnr create DIR FILE)
  ctnr extract --container FILE --outdir DIR [options] [PATTERN...]
                                                       (or: ctnr extract FILE DIR [PATTERN...])
  ctnr list    --container FILE [--index FILE] [--json] [PATTERN...]
  ctnr verify  --container FILE [--index FILE] [PATTERN...]
  ctnr cat     --container FILE PATTERN...            (each file selected, to stdout)

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
  // committed stays; a later run sweeps its temp files). `list` and `cat` have nothing to commit
  // or clean up, so they take no signal: the default action ends them at once, even when they
  // are blocked writing into a pipe nobody reads (the JavaScript thread is then stuck in
  // write(2) and no listener could run).
  const signals = command === "list" || command === "cat"
    ? []
    : (["SIGINT", "SIGTERM", "SIGHUP"] as const);
  for (const signal of signals) {
    const listener = () => {
      if (controller.signal.aborted) {
        io.stderr(`ctnr: Interrupted by ${signal} again: stopped at once`);
        Deno.exit(new InterruptedError(signal).exitCode);
      }
      controller.abort(signal);
    };
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

function helpCommand(command: string | undefined): string {
  return command !== undefined && COMMANDS.some((c) => c.name === command)
    ? `ctnr ${command} --help`
    : "ctnr --help";
}

/** Print an error in one line (no stack trace for any fault ctnr expects) and pick the exit code. */
function report(error: unknown, io: CliIo, command: string | undefined): number {
  if (error instanceof StdoutClosed) return 141; // `ctnr list | head`: quietly, as cat does
  error = environmentFault(error, "ctnr", "what was committed is kept");
  if (error instanceof CtnrError) {
    io.stderr(`ctnr: ${printableMessage(messageWithFlags(error, COMMANDS))}`);
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

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
