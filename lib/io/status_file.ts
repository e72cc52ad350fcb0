/**
 * The `--status-file` of both commands: a small file rewritten atomically
 * (temp file, then rename) at most once a second, in `kv` (`key=value`
 * lines, as the original tools write) or `json` form.
 *
 * @module
 */

import { siblingTemp } from "./temp_file.ts";

/** Formats of the status file. */
export type StatusFormat = "kv" | "json";

/** Values a status file holds. */
export type StatusFields = Record<string, string | number | boolean>;

const THROTTLE_MS = 1000;

/**
 * A status file that keeps the latest fields and writes them out throttled.
 *
 * @example Write a status file once
 * ```ts
 *
 * const path = await Deno.makeTempFile();
 * const status = new StatusFile(path, "kv");
 * await status.update({ status: "finished", processed_files: 3 }, true);
 * if (!(await Deno.readTextFile(path)).includes("processed_files=3")) throw new Error("not written");
 * await Deno.remove(path);
 * ```
 */
export class StatusFile {
  #path: string;
  #format: StatusFormat;
  #fields: StatusFields = {};
  #lastWrite = 0;

  /**
   * Prepare a status file; nothing is written until `update()`.
   *
   * @param path where to write; its temp file is `path + ".ctnr-tmp"` (lib/io/temp_file.ts)
   * @param format `kv` or `json`
   */
  constructor(path: string, format: StatusFormat = "kv") {
    this.#path = path;
    this.#format = format;
  }

  /** Paths this status file writes (the file and its temp file). */
  get paths(): string[] {
    return [this.#path, siblingTemp(this.#path)];
  }

  /**
   * Merge `fields` into the status and write it when a second has passed or `force` is set.
   *
   * @param fields values to set
   * @param force write now regardless of the throttle
   */
  async update(fields: StatusFields, force = false): Promise<void> {
    Object.assign(this.#fields, fields);
    const now = Date.now();
    if (!force && now - this.#lastWrite < THROTTLE_MS) return;
    this.#lastWrite = now;
    const text = this.#format === "json"
      ? JSON.stringify(this.#fields)
      : Object.entries(this.#fields).map(([k, v]) => `${k}=${v}\n`).join("");
    const tmp = siblingTemp(this.#path);
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, this.#path);
  }
}

/**
 * The rate and time-left fields of a status file (`speed_bps`, `eta_seconds`), the same for
 * every command.
 *
 * @param startMs when the run started, in milliseconds since the epoch
 * @param rateBytes bytes whose pace gives the rate (stored bytes for create)
 * @param doneBytes bytes done towards `totalBytes`
 * @param totalBytes bytes in all, when known
 * @returns `speed_bps` in bytes a second, and `eta_seconds` (empty when unknown)
 */
export function progressFields(
  startMs: number,
  rateBytes: number,
  doneBytes: number,
  totalBytes: number | undefined,
): { speed_bps: number; eta_seconds: number | string } {
  const elapsed = (Date.now() - startMs) / 1000;
  const speed = elapsed > 0 ? Math.round(rateBytes / elapsed) : 0;
  return {
    speed_bps: speed,
    eta_seconds: totalBytes !== undefined && speed > 0
      ? Math.max(0, Math.round((totalBytes - doneBytes) / speed))
      : "",
  };
}
