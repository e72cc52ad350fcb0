/**
 * The end of a run stopped by a second signal (SIGINT, SIGTERM, SIGHUP): `cli.ts` listens for
 * them; this prints what the run says when it stops at once.
 *
 * @module
 */

import { InterruptedError } from "../lib/errors.ts";
import type { CliIo } from "./output.ts";
import { stopShownProgress } from "./progress.ts";
import type { RunSummary } from "./summary.ts";

/**
 * A second signal: the run stops at once (what was committed stays; a later run sweeps its temp
 * files). Says so in one line and, with `--json`, prints the summary with the counts as they
 * stand (README "Output for scripts": a run stopped by a signal prints it).
 *
 * @param signal the signal received again
 * @param io where to print
 * @param summary the run's summary
 * @returns the exit code (129, 130, 143)
 */
export function stopAtOnce(
  signal: "SIGINT" | "SIGTERM" | "SIGHUP",
  io: CliIo,
  summary: RunSummary,
): number {
  const error = new InterruptedError(signal);
  const message = `${error.message} again: stopped at once`;
  stopShownProgress(); // the bar kept as a line: the message below it, not glued to it
  io.stderr(`ctnr: ${message}`);
  if (summary.json) {
    summary.fail({ code: error.code, message });
    try {
      io.stdout(summary.toJson(error.exitCode));
    } catch { /* stdout closed: nothing more to say */ }
  }
  return error.exitCode;
}
