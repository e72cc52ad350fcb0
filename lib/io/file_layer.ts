/**
 * The file layer that `create` writes the container and its index through:
 * opening, appending, fsync, truncation, and the name operations whose
 * durability depends on an fsync of their folder (create, rename, remove).
 * Tests swap in their own layer to simulate power loss (every byte written
 * after a file's last `sync` is lost, and a name change not followed by an
 * fsync of its folder may be undone), the way SQLite tests crash safety.
 *
 * @module
 */

import { BusyError, ContainerFormatError, environmentFault } from "../errors.ts";
import { writeAll } from "./copy.ts";
import type { RandomAccess } from "./random_access.ts";

/** An open file that is read at offsets and written only at its end. */
export interface LayerFile extends RandomAccess {
  /** Current size in bytes, including writes not yet synced. */
  readonly size: number;
  /** Append all of `bytes` at the end of the file. */
  append(bytes: Uint8Array): Promise<void>;
  /** Make every byte appended so far durable (fsync). */
  sync(): Promise<void>;
  /** Cut the file to `size` bytes and make the new size durable. */
  truncate(size: number): Promise<void>;
  /**
   * Take an exclusive lock on the file (`flock(2)` on POSIX, `LockFileEx` on Windows) without
   * waiting; it is released when the file is closed or its process ends.
   *
   * @returns `false` when another open file holds a lock on it
   */
  tryLock(): Promise<boolean>;
  /** Close the file. */
  close(): void;
}

/**
 * Opens files for {@link LayerFile} access and changes names. A name made by
 * `open`, `rename` or `remove` is durable only once `syncFolder` of its folder
 * returns (POSIX fsync of a directory; Linux `fsync(2)`, "Calling fsync() does
 * not necessarily ensure that the entry in the directory containing the file
 * has also reached disk").
 */
export interface FileLayer {
  /**
   * Open `path` for reading and appending, creating it when missing.
   * @param path file path
   */
  open(path: string): Promise<LayerFile>;
  /**
   * Make the names in `folder` durable (fsync of the folder). Where folders cannot be opened
   * for fsync (Windows), this does nothing.
   * @param folder folder path
   */
  syncFolder(folder: string): Promise<void>;
  /**
   * Rename `from` to `to`, replacing `to` when it is a file.
   * @param from current path
   * @param to new path
   */
  rename(from: string, to: string): Promise<void>;
  /**
   * Remove the file `path`.
   * @param path file path
   */
  remove(path: string): Promise<void>;
}

/** The real file layer over `Deno.open`, `Deno.rename` and `Deno.remove`. */
export const DENO_FILE_LAYER: FileLayer = {
  async open(path: string): Promise<LayerFile> {
    const file = await Deno.open(path, { read: true, append: true, create: true });
    try {
      const size = (await file.stat()).size;
      return new DenoLayerFile(file, size, path);
    } catch (error) {
      file.close();
      throw error;
    }
  },
  async syncFolder(folder: string): Promise<void> {
    // Windows cannot open a folder for fsync: the files' own fsyncs are what there is.
    if (Deno.build.os === "windows") return;
    const handle = await Deno.open(folder, { read: true });
    try {
      await handle.sync();
    } catch (error) {
      // Some file systems do not fsync folders (EINVAL); any other failure is real (EIO).
      const code = (error as { code?: string }).code;
      if (code !== "EINVAL" && code !== "ENOTSUP" && code !== "EOPNOTSUPP") throw error;
    } finally {
      handle.close();
    }
  },
  rename(from: string, to: string): Promise<void> {
    return Deno.rename(from, to);
  },
  remove(path: string): Promise<void> {
    return Deno.remove(path);
  },
};

/**
 * Read-only random access to a file by path. Anything but a regular file (a FIFO, a device, a
 * folder) is refused before it is opened.
 *
 * @param path file path
 * @returns the open file as {@link RandomAccess} with `close()`
 */
export async function openRandomAccess(path: string): Promise<RandomAccess & { close(): void }> {
  // Looked at before it is opened: opening a FIFO blocks until a writer comes (forever, and
  // deaf to Ctrl-C), and a device is no container.
  if (!(await Deno.stat(path)).isFile) {
    throw new ContainerFormatError(`Cannot read "${path}": not a regular file`);
  }
  const file = await Deno.open(path, { read: true });
  try {
    const info = await file.stat();
    if (!info.isFile) throw new ContainerFormatError(`Cannot read "${path}": not a regular file`);
    return new DenoLayerFile(file, info.size, path);
  } catch (error) {
    file.close();
    throw error;
  }
}

class DenoLayerFile implements LayerFile {
  #file: Deno.FsFile;
  #size: number;
  #path: string;
  #lock: Promise<void> = Promise.resolve();
  /** Reads started or queued and not yet settled. */
  #running = 0;
  /** The file position when known (-1: unknown, seek first). */
  #position = -1;

  constructor(file: Deno.FsFile, size: number, path: string) {
    this.#file = file;
    this.#size = size;
    this.#path = path;
  }

  get size(): number {
    return this.#size;
  }

  readAt(position: number, length: number): Promise<Uint8Array> {
    return this.#oneAtATime(() => this.#readAt(position, length));
  }

  readInto(position: number, into: Uint8Array): Promise<void> {
    return this.#oneAtATime(() => this.#readInto(position, into));
  }

  /**
   * Seek and read are two calls on one file position: run one read at a time. A read that
   * finds none running starts now, not a microtask later: its caller is often about to hash
   * a megabyte synchronously, and the read would wait for that (2 x 256 MiB extract: ~75 ms
   * of waiting a file, measured with timers around copyInTurns).
   */
  #oneAtATime<T>(run: () => Promise<T>): Promise<T> {
    const result = this.#running === 0 ? run() : this.#lock.then(run);
    this.#running++;
    this.#lock = result.then(() => {}, () => {}).then(() => {
      this.#running--;
    });
    return result;
  }

  async #readAt(position: number, length: number): Promise<Uint8Array> {
    const bytes = new Uint8Array(length);
    await this.#readInto(position, bytes);
    return bytes;
  }

  async #readInto(position: number, bytes: Uint8Array): Promise<void> {
    // Sequential reads (a big payload's pieces, the next small-file window) need no seek.
    if (position !== this.#position) await this.#file.seek(position, Deno.SeekMode.Start);
    this.#position = -1; // unknown until the read below is complete
    let filled = 0;
    while (filled < bytes.length) {
      const n = await this.#file.read(bytes.subarray(filled));
      if (n === null) {
        throw new ContainerFormatError(
          `Cannot read "${this.#path}": ends at byte ${position + filled}, ` +
            `expected ${bytes.length} bytes from offset ${position}`,
        );
      }
      filled += n;
    }
    this.#position = position + filled;
  }

  async append(bytes: Uint8Array): Promise<void> {
    this.#position = -1; // append mode writes at the end, wherever reads left the position
    try {
      await writeAll(this.#file, bytes);
    } catch (error) {
      throw this.#fault(error);
    }
    this.#size += bytes.length;
  }

  async sync(): Promise<void> {
    try {
      await this.#file.sync();
    } catch (error) {
      throw this.#fault(error);
    }
  }

  async truncate(size: number): Promise<void> {
    this.#position = -1;
    try {
      await this.#file.truncate(size);
      await this.#file.sync();
    } catch (error) {
      throw this.#fault(error);
    }
    this.#size = size;
  }

  /** A full disk or an I/O error as one line naming this file; the writer's run resumes later. */
  #fault(error: unknown): unknown {
    return environmentFault(
      error,
      `Cannot write "${this.#path}"`,
      "what was committed is kept: fix that and run create again, it resumes",
    );
  }

  tryLock(): Promise<boolean> {
    return this.#file.tryLock(true);
  }

  close(): void {
    this.#file.close();
  }
}

/**
 * Whether anything (file, folder, link, even a dangling one) stands at `path`.
 *
 * @param path the path
 * @returns `true` when `lstat` finds it
 * @throws the error of `lstat` other than not-found (permission, ...)
 */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Take the writer's lock of a file of a container: one writer at a time (two `create` runs on
 * one container would both append, and the index would name entries twice). Readers take no
 * lock and never wait.
 *
 * @param file the open container or index
 * @param path its path, for the message
 * @throws {BusyError} at once when another run holds the lock
 */
export async function lockForWriting(file: LayerFile, path: string): Promise<void> {
  if (await file.tryLock()) return;
  throw new BusyError(
    `Cannot write "${path}": another ctnr run is writing it (it holds its lock); wait for that ` +
      `run to end, or stop it`,
  );
}
