/**
 * A marker file that `extract` holds in its output folder while it writes,
 * so that a later run can tell whether an earlier one was killed before it
 * could remove its temp files (SIGKILL, power loss, out of memory).
 *
 * Every run opens `<outdir>/.ctnr-extract.lock` and holds a shared
 * `flock(2)` on it; the kernel drops the lock when the process dies. A run
 * that finds the marker already there and can take it exclusively knows no
 * other run is alive, so the marker was left by a run that was killed: its
 * temp files may be swept. The last run out removes the marker. A clean run
 * into a fresh folder costs one small file and two locks; nothing is listed.
 *
 * A file at that path that is not such a marker (a link, a folder, or a file
 * with other content, such as an entry of a container extracted there) is
 * left alone: the run then goes on without a marker.
 *
 * @module
 */

/** Name of the marker in the output folder. */
export const RUN_MARKER = ".ctnr-extract.lock";

/** What a marker holds, so that a file of the same name that is not one is told apart. */
const CONTENT = new TextEncoder().encode("ctnr extract in progress\n");

/** The marker of one extraction run. */
export class RunMarker {
  #file: Deno.FsFile | undefined;
  #path: string;
  /** Whether a run that was killed left the marker, so its temp files may still lie around. */
  readonly interruptedBefore: boolean;

  private constructor(file: Deno.FsFile | undefined, path: string, interruptedBefore: boolean) {
    this.#file = file;
    this.#path = path;
    this.interruptedBefore = interruptedBefore;
  }

  /**
   * Open the marker in `outdir` (an existing folder) and hold a shared lock on it.
   *
   * @param outdir the output folder
   * @returns the marker; call {@link RunMarker.close} when the run ends
   */
  static async open(outdir: string): Promise<RunMarker> {
    // The marker may go between finding it there and opening it (the last other run out
    // removed it, as the shards of a set extracted at once do): then it is made again.
    for (let attempt = 1;; attempt++) {
      try {
        return await RunMarker.#open(outdir);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound) || attempt === 5) throw error;
      }
    }
  }

  static async #open(outdir: string): Promise<RunMarker> {
    const path = `${outdir}/${RUN_MARKER}`;
    let file: Deno.FsFile;
    let existed = false;
    try {
      file = await Deno.open(path, { read: true, write: true, createNew: true, mode: 0o600 });
      try {
        await file.write(CONTENT);
      } catch (error) {
        file.close();
        throw error;
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      existed = true;
      const info = await Deno.lstat(path);
      if (!info.isFile || info.size !== CONTENT.length) {
        return new RunMarker(undefined, path, false);
      }
      file = await Deno.open(path, { read: true });
    }
    try {
      if (existed && !(await holds(file, CONTENT))) {
        file.close();
        return new RunMarker(undefined, path, false);
      }
      // Alone (exclusive lock granted) and the marker was there: its owner died holding it.
      const alone = await file.tryLock(true);
      const interruptedBefore = existed && alone;
      if (alone) await file.unlock();
      await file.lock(false);
      return new RunMarker(file, path, interruptedBefore);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /**
   * Release the lock; the last run out removes the marker, when the name still leads to it
   * (an entry of the container may have been extracted over that name).
   */
  async close(): Promise<void> {
    const file = this.#file;
    if (file === undefined) return;
    this.#file = undefined;
    try {
      await file.unlock();
      if (await file.tryLock(true)) {
        const mine = await file.stat();
        const there = await Deno.lstat(this.#path).catch(() => undefined);
        if (there?.ino === mine.ino && there?.dev === mine.dev) await Deno.remove(this.#path);
      }
    } finally {
      file.close();
    }
  }
}

/** Whether the open file holds exactly `expected`. */
async function holds(file: Deno.FsFile, expected: Uint8Array): Promise<boolean> {
  const bytes = new Uint8Array(expected.length + 1);
  let filled = 0;
  for (;;) {
    const n = await file.read(bytes.subarray(filled));
    if (n === null) break;
    filled += n;
    if (filled === bytes.length) break;
  }
  return filled === expected.length && expected.every((b, i) => bytes[i] === b);
}
