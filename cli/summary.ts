/**
 * The `--json` summary of a run: one JSON object printed on stdout when the
 * command ends, whether it succeeded or failed (README "Output for scripts").
 * The command fills in its own fields as it goes; `cli.ts` adds the exit code
 * and the error that decided it, and prints it.
 *
 * Keys every summary has, in this order: `command`; `ok` (exit code 0);
 * `exit_code`; `error` (`null`, or `{code, message}`: the fault that ended
 * the run or made it fail); the command's own fields (sizes in bytes, counts
 * of entries); `duration_s` (wall time in seconds, to the millisecond);
 * `faults` (entries that failed and source items that could not be read);
 * `fault_list` (the first {@link FAULTS_LISTED} of them, `{code, message,
 * relpath?}`); `warnings`; `warning_codes` (how many of each code).
 *
 * @module
 */

import type { CtnrWarning } from "../mod.ts";

/** Faults listed one by one in `fault_list`; `faults` counts them all. */
export const FAULTS_LISTED = 1000;

/** One fault or error of the summary: a stable code and the message printed on stderr. */
export interface SummaryFault {
  /** Stable code (`INTEGRITY`, `SOURCE`, `CONTAINER_CUT`, ...; README "Exit codes"). */
  code: string;
  /** The message, as the stderr line says it (without `ctnr: `), names not escaped. */
  message: string;
  /** The entry or source item it is about, when there is one. */
  relpath?: string;
}

/** What a command reports in its summary, filled in as it runs. */
export class RunSummary {
  /** Whether `--json` was given: set by the command once its flags are read. */
  json = false;
  #command: string;
  #start = performance.now();
  #fields: Record<string, unknown> = {};
  #live: (() => Record<string, unknown>)[] = [];
  #faults = 0;
  #faultList: SummaryFault[] = [];
  #warnings = 0;
  #warningCodes: Record<string, number> = {};
  #error: SummaryFault | undefined;

  /** @param command the command's name (`create`) */
  constructor(command: string) {
    this.#command = command;
  }

  /** Set fields of the command (snake_case keys; sizes in bytes). */
  set(fields: Record<string, unknown>): void {
    Object.assign(this.#fields, fields);
  }

  /**
   * Fields read when the summary is printed: counts that grow as the run goes, so a run stopped
   * at once (a second signal) still prints them as they stand.
   */
  setLive(fields: () => Record<string, unknown>): void {
    this.#live.push(fields);
  }

  /** Count a fault (an entry that failed, a source item that could not be read) and list it. */
  fault(fault: SummaryFault): void {
    this.#faults++;
    if (this.#faultList.length < FAULTS_LISTED) this.#faultList.push(fault);
  }

  /** Count a warning by its code. */
  warning(warning: CtnrWarning): void {
    this.#warnings++;
    this.#warningCodes[warning.code] = (this.#warningCodes[warning.code] ?? 0) + 1;
  }

  /**
   * Name the fault that made the run fail when the command handled it itself (a `verify` with
   * faults); an error thrown out of the command is named by `cli.ts`.
   */
  fail(error: SummaryFault): void {
    this.#error = error;
  }

  /** The error named so far, if any. */
  get error(): SummaryFault | undefined {
    return this.#error;
  }

  /**
   * The summary as one line of JSON.
   *
   * @param exitCode the process exit code
   * @returns the JSON text, without a newline
   */
  toJson(exitCode: number): string {
    return JSON.stringify({
      command: this.#command,
      ok: exitCode === 0,
      exit_code: exitCode,
      error: this.#error ?? null,
      ...this.#fields,
      ...Object.assign({}, ...this.#live.map((fields) => fields())),
      duration_s: Math.round(performance.now() - this.#start) / 1000,
      faults: this.#faults,
      fault_list: this.#faultList,
      warnings: this.#warnings,
      warning_codes: this.#warningCodes,
    });
  }
}
