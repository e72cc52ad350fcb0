/**
 * The index cache of remote containers: the index of a container read over HTTP, kept on disk
 * so that the next command on the same container reads no index again (a second `cat` costs one
 * request). One file per container version, in a folder per host:
 * `<cache>/<host>/<sha256 of the key>.ctnr-index`, holding a JSON line (key, ETag, size, where
 * the index lies, the SHA-256 of the index bytes) and the index bytes. Written to a temp name and
 * renamed; checked against its SHA-256 each time it is used (a damaged entry is dropped and the
 * index fetched again).
 * Only objects with a strong ETag are cached: the ETag (with the size) tells a stale entry, by
 * `If-Match` on the first request that uses it.
 *
 * @module
 */

import { join } from "node:path";
import type { TrailerLocation } from "../format/trailer.ts";
import { type RandomAccess, sliceOf } from "../io/random_access.ts";
import { openRandomAccess } from "../io/file_layer.ts";
import { Sha256, sha256Hex, sha256OfRange } from "../io/sha256.ts";

/** The version of the cache file layout. */
const LAYOUT = 2;
/** Stands for the index's SHA-256 in a header until it is known (same length). */
const NO_SHA256 = "0".repeat(64);
const SUFFIX = ".ctnr-index";

/** What the cache holds of one container version. */
export interface CachedIndex {
  /** The URL without its query (for `s3://`, the s3 URL with its endpoint). */
  key: string;
  /** The strong ETag of the object. */
  etag: string;
  /** Size in bytes of the object. */
  size: number;
  /** Where the index lies in the object; `null` for an index that is an object of its own. */
  trailer: TrailerLocation | null;
}

/**
 * The cache folder: `CTNR_CACHE_DIR`, else `XDG_CACHE_HOME/ctnr`, else the platform's cache
 * folder (`~/.cache/ctnr`, `~/Library/Caches/ctnr`, `%LOCALAPPDATA%\ctnr`).
 *
 * @returns the folder, or `undefined` when none is known (no environment access)
 */
export function defaultCacheDir(): string | undefined {
  const get = (name: string) => {
    try {
      return Deno.env.get(name) || undefined;
    } catch {
      return undefined; // no --allow-env: no cache
    }
  };
  const own = get("CTNR_CACHE_DIR");
  if (own !== undefined) return own;
  const xdg = get("XDG_CACHE_HOME");
  if (xdg !== undefined) return join(xdg, "ctnr");
  if (Deno.build.os === "windows") {
    const local = get("LOCALAPPDATA");
    return local === undefined ? undefined : join(local, "ctnr");
  }
  const home = get("HOME");
  if (home === undefined) return undefined;
  return Deno.build.os === "darwin"
    ? join(home, "Library", "Caches", "ctnr")
    : join(home, ".cache", "ctnr");
}

/** The index cache in one folder. */
export class IndexCache {
  /** The cache folder. */
  readonly dir: string;

  /** @param dir the cache folder (made when the first entry is written) */
  constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * The cached index of `key`, when there is one whole.
   *
   * @param key the URL without its query
   * @returns what was cached and the index bytes as a source (`close()` it), or `undefined`
   */
  async lookup(
    key: string,
  ): Promise<{ entry: CachedIndex; index: RandomAccess & { close(): void } } | undefined> {
    const path = this.#path(key);
    let file: (RandomAccess & { close(): void }) | undefined;
    try {
      file = await openRandomAccess(path);
      const head = await file.readAt(0, Math.min(file.size, 4096));
      const newline = head.indexOf(0x0a);
      if (newline < 0) throw new Error("no header");
      const header = JSON.parse(new TextDecoder().decode(head.subarray(0, newline)));
      const entry = header as CachedIndex & {
        layout: number;
        indexBytes: number;
        indexSha256: string;
      };
      if (
        entry.layout !== LAYOUT || entry.key !== key || typeof entry.etag !== "string" ||
        !Number.isSafeInteger(entry.size) || file.size !== newline + 1 + entry.indexBytes
      ) throw new Error("another layout or key");
      if (await sha256OfRange(file, newline + 1, entry.indexBytes) !== entry.indexSha256) {
        // Damaged on disk: fetched again, not trusted and not blamed on the server.
        file.close();
        file = undefined;
        await this.drop(key);
        return undefined;
      }
      const index = sliceOf(file, newline + 1, entry.indexBytes);
      file = undefined;
      return {
        entry: { key, etag: entry.etag, size: entry.size, trailer: entry.trailer },
        index,
      };
    } catch {
      file?.close();
      return undefined;
    }
  }

  /**
   * Write the index of a container version: to a temp name, then renamed over any older one.
   *
   * @param entry what it is the index of
   * @param indexBytes the index's length in bytes
   * @param write writes the index bytes, in order, through `append`
   * @returns the index bytes as a source (`close()` it)
   */
  async store(
    entry: CachedIndex,
    indexBytes: number,
    write: (append: (bytes: Uint8Array) => Promise<void>) => Promise<void>,
  ): Promise<RandomAccess & { close(): void }> {
    const path = this.#path(entry.key);
    await Deno.mkdir(join(path, ".."), { recursive: true });
    const temp = `${path}.${crypto.randomUUID().slice(0, 8)}.ctnr-tmp`;
    const text = JSON.stringify({ layout: LAYOUT, ...entry, indexBytes, indexSha256: NO_SHA256 });
    const header = new TextEncoder().encode(text + "\n");
    // Where the SHA-256 goes once the index is written (ASCII up to it: keys are URLs).
    const shaAt = new TextEncoder().encode(text.slice(0, text.lastIndexOf(NO_SHA256))).length;
    const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
    let renamed = false;
    try {
      await writeAll(file, header);
      let written = 0;
      const hash = new Sha256();
      await write(async (bytes) => {
        written += bytes.length;
        hash.update(bytes);
        await writeAll(file, bytes);
      });
      if (written !== indexBytes) throw new Error(`wrote ${written} of ${indexBytes} index bytes`);
      await file.seek(shaAt, Deno.SeekMode.Start);
      await writeAll(file, new TextEncoder().encode(hash.digest()));
      file.close();
      await Deno.rename(temp, path);
      renamed = true;
    } finally {
      if (!renamed) {
        try {
          file.close();
        } catch { /* closed */ }
        await Deno.remove(temp).catch(() => {});
      }
    }
    const opened = await openRandomAccess(path);
    return sliceOf(opened, header.length, indexBytes);
  }

  /**
   * Drop the cached index of `key` (it is stale).
   *
   * @param key the URL without its query
   */
  async drop(key: string): Promise<void> {
    await Deno.remove(this.#path(key)).catch(() => {});
  }

  #path(key: string): string {
    let host = "other";
    try {
      host = new URL(key).host.replace(/[^A-Za-z0-9.-]/g, "_") || "other";
    } catch { /* not a URL: one folder for all */ }
    return join(this.dir, host, sha256Hex(new TextEncoder().encode(key)) + SUFFIX);
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
}
