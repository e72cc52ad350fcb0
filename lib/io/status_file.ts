/**
 * The `--status-file` of both commands: a small file rewritten at most once a
 * second, in `kv` (`key=value` lines, as the original tools write) or `json`
 * form. Where it is written decides how:
 *
 * - a regular file, or nothing yet: atomically (a temp file beside it, then a
 *   rename), so a reader never sees half a status;
 * - a symlink: its target is written atomically, and the link is kept;
 * - this process's standard output or error (`/dev/stdout`, or the very
 *   file the shell redirected it to): each update written through that
 *   stream, so that its lines and the status's follow one another;
 * - a FIFO, a character device (a terminal, `/dev/null`), or a file this
 *   process has open (`/dev/fd/N`): opened once, and each update written to
 *   it in turn, never renamed over (a rename would replace the device node or
 *   the link, or the file the shell redirected output to); a FIFO's open
 *   waits for a reader, as a shell redirection does;
 * - a folder: refused.
 *
 * @module
 */

import { dirname } from "node:path";
import { environmentFault, InterruptedError, stoppedBy, UsageError } from "../errors.ts";
import { escapeChar } from "../escape.ts";
import { locate } from "../safety/output_paths.ts";
import { writeAll } from "./copy.ts";
import { siblingTemp } from "./temp_file.ts";

/** Formats of the status file. */
export type StatusFormat = "kv" | "json";

/** Values a status file holds. */
export type StatusFields = Record<string, string | number | boolean>;

const THROTTLE_MS = 1000;

/** How a status file is written: renamed into place at `target`, or written to an open file. */
type StatusWay =
  | { atomic: string }
  | { direct: { write(bytes: Uint8Array): Promise<number>; close(): void }; shared?: true };

/**
 * A status file that keeps the latest fields and writes them out throttled.
 *
 * @example Write a status file once
 * ```ts
 *
 * const path = await Deno.makeTempFile();
 * const status = new StatusFile(path, "kv");
 * await status.update({ status: "finished", processed_files: 3 }, true);
 * status.close();
 * if (!(await Deno.readTextFile(path)).includes("processed_files=3")) throw new Error("not written");
 * await Deno.remove(path);
 * ```
 */
export class StatusFile {
  #path: string;
  #format: StatusFormat;
  #signal: AbortSignal | undefined;
  #fields: StatusFields = {};
  #lastWrite = 0;
  #way: StatusWay | undefined;

  /**
   * Prepare a status file; nothing is opened or written until `prepare()` or `update()`.
   *
   * @param path where to write; a regular file's temp file is `path + ".ctnr-tmp"`
   *   (lib/io/temp_file.ts), beside the file a symlink leads to
   * @param format `kv` or `json`
   * @param options `signal`: stops the wait for a FIFO's reader (`InterruptedError`)
   */
  constructor(path: string, format: StatusFormat = "kv", options: { signal?: AbortSignal } = {}) {
    this.#path = path;
    this.#format = format;
    this.#signal = options.signal;
  }

  /** Paths this status file writes when it is a regular file (the file and its temp file). */
  get paths(): string[] {
    return [this.#path, siblingTemp(this.#path)];
  }

  /**
   * Decide how the status file is written (see the module doc) and open it when it is written
   * directly. `update()` calls it when it was not called before.
   *
   * @throws {UsageError} when the path is a folder, or a file that cannot be written there (its
   *   folder missing or read-only; option `statusFile`)
   * @throws {InterruptedError} when `signal` aborts the wait for a FIFO's reader
   */
  async prepare(): Promise<void> {
    if (this.#way !== undefined) return;
    const target = await locate(this.#path);
    if (target.kind === "folder") {
      throw new UsageError(
        `Cannot write the status file "${this.#path}" (\`statusFile\`): it is a folder`,
        { options: ["statusFile"] },
      );
    }
    // This process's own stdout or stderr (`/dev/stdout`, or the file the shell redirected it
    // to): written through the same open file, so its lines and the status's follow one another
    // instead of overwriting each other at two offsets.
    const stream = await standardStream(target.identity);
    if (stream !== undefined) {
      this.#way = { direct: stream, shared: true };
      return;
    }
    if ((target.kind === "file" && !target.processFile) || target.kind === "missing") {
      await this.#probe(target.final);
      this.#way = { atomic: target.final };
      return;
    }
    // A device, a FIFO or a file the process has open: written in turn, never renamed over.
    this.#way = { direct: await this.#openDirect() };
  }

  /**
   * Write and remove the temp file once, so that a status file that cannot be written (its
   * folder missing or read-only) is a usage error before the run writes anything else.
   */
  async #probe(final: string): Promise<void> {
    const tmp = siblingTemp(final);
    try {
      await Deno.writeTextFile(tmp, "");
      await Deno.remove(tmp);
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound
        ? `its folder "${dirname(final)}" does not exist`
        : error instanceof Deno.errors.PermissionDenied
        ? `permission denied in "${dirname(final)}"`
        : (error as Error).message.replace(/: [a-z]+ '.*$/s, "");
      throw new UsageError(
        `Cannot write the status file "${this.#path}" (\`statusFile\`): ${why}`,
        {
          options: ["statusFile"],
        },
      );
    }
  }

  async #openDirect(): Promise<Deno.FsFile> {
    const opening = Deno.open(this.#path, { write: true, append: true });
    const signal = this.#signal;
    if (signal === undefined) return await opening;
    // Opening a FIFO waits for a reader: let a signal end the wait.
    let onAbort = () => {};
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new InterruptedError(stoppedBy(signal)));
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([opening, aborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
      opening.then((file) => signal.aborted && file.close(), () => {});
    }
  }

  /**
   * Merge `fields` into the status and write it when a second has passed or `force` is set.
   *
   * @param fields values to set
   * @param force write now regardless of the throttle
   * @throws {UsageError} when the path is a folder
   * @throws {EnvironmentError} when a status written directly cannot be (its reader left, a
   *   full disk)
   */
  async update(fields: StatusFields, force = false): Promise<void> {
    Object.assign(this.#fields, fields);
    const now = Date.now();
    if (!force && now - this.#lastWrite < THROTTLE_MS) return;
    this.#lastWrite = now;
    await this.prepare();
    const way = this.#way!;
    const text = this.#format === "json"
      ? JSON.stringify(this.#fields)
      : Object.entries(this.#fields).map(([k, v]) => `${k}=${kvValue(v)}\n`).join("");
    if ("direct" in way) {
      try {
        // One status after another: a JSON status ends its line.
        await writeAll(
          way.direct,
          new TextEncoder().encode(this.#format === "json" ? text + "\n" : text),
        );
      } catch (error) {
        throw environmentFault(
          error,
          `Cannot write the status file "${this.#path}"`,
          "the run stopped",
        );
      }
      return;
    }
    const tmp = siblingTemp(way.atomic);
    await Deno.writeTextFile(tmp, text);
    await Deno.rename(tmp, way.atomic);
  }

  /** Close a status file written directly; a regular one holds nothing open. */
  close(): void {
    if (this.#way !== undefined && "direct" in this.#way && !this.#way.shared) {
      this.#way.direct.close();
    }
    this.#way = undefined;
  }
}

/**
 * Whether `path` is the file the process's standard output (or else error) writes to, by
 * identity (a redirected file by any name, `/dev/stdout`, the same terminal).
 *
 * @param path a path, existing or not
 * @returns `stdout`, `stderr`, or `undefined` (also where `/dev/stdout` is not)
 */
export async function standardStreamAt(path: string): Promise<"stdout" | "stderr" | undefined> {
  const info = await Deno.stat(path).catch(() => undefined);
  if (info?.ino == null) return undefined;
  const stream = await standardStream(`${info.dev}:${info.ino}`);
  return stream === undefined ? undefined : stream === Deno.stdout ? "stdout" : "stderr";
}

/**
 * The process's standard output or error when `identity` (`dev:ino`) is the file it writes to.
 *
 * @param identity the status file's identity, when it exists
 * @returns `Deno.stdout` or `Deno.stderr`, else `undefined` (also where `/dev/stdout` is not)
 */
async function standardStream(
  identity: string | undefined,
): Promise<typeof Deno.stdout | typeof Deno.stderr | undefined> {
  if (identity === undefined) return undefined;
  for (
    const [path, stream] of [["/dev/stdout", Deno.stdout], ["/dev/stderr", Deno.stderr]] as const
  ) {
    const info = await Deno.stat(path).catch(() => undefined);
    if (info?.ino != null && `${info.dev}:${info.ino}` === identity) return stream;
  }
  return undefined;
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

/**
 * A value of a `kv` status line: control characters and backslashes escaped (`\n`, `\t`,
 * `\x1b`, `\\`), so a file name can neither break its line (a name with a newline could add a
 * line `status=finished`) nor reach a terminal the status file is shown on as a control code.
 *
 * @param value the field's value
 * @returns its text, on one line
 */
export function kvValue(value: unknown): string {
  return String(value).replace(KV_ESCAPED, (c) => c === "\r" ? "\\r" : escapeChar(c));
}

// C0 controls, DEL, C1 controls, line and paragraph separators, and the backslash.
// deno-lint-ignore no-control-regex
const KV_ESCAPED = /[\x00-\x1f\x7f-\x9f\u2028\u2029\\]/g;
