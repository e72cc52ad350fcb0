/**
 * Reading a shard set: its manifest (a local file or an `http://`, `https://` or `s3://` URL
 * whose path ends in `.manifest.json`), the shards it names resolved against the manifest's
 * folder (or URL), and each shard opened only when asked, its embedded index checked against
 * the manifest's `index_offset`, `index_length` and `index_sha256` before it is trusted.
 *
 * @module
 */

import { dirname, join, resolve, sep as SEPARATOR } from "node:path";
import { ContainerFormatError, UsageError } from "../errors.ts";
import { ContainerReader, type ContainerReaderOptions } from "../read/container_reader.ts";
import { HttpSource, isRemote, urlWithoutQuery } from "../remote/http_source.ts";
import { type RemoteOptions, remoteTarget } from "../remote/remote_container.ts";
import {
  type Manifest,
  MANIFEST_SUFFIX,
  MAX_MANIFEST_BYTES,
  parseManifest,
  type ShardRecord,
} from "./manifest.ts";

/**
 * Whether `path` names a manifest: a file name (or a URL's path, its query left out) ending in
 * `.manifest.json`.
 *
 * @param path a path or URL
 * @returns whether readers take it as a shard set
 */
export function isManifest(path: string): boolean {
  return (isRemote(path) ? urlWithoutQuery(path) : path).endsWith(MANIFEST_SUFFIX);
}

/** A part of a set to read: `--part K/N`, K from 0. */
export interface PartSelection {
  /** The part, 0 to `count - 1`. */
  index: number;
  /** How many parts: must be the manifest's `split.parts`. */
  count: number;
}

/** An open manifest: its shards, each opened on demand. */
export class ShardSet {
  /** The manifest's path or URL (without its query), for messages. */
  readonly path: string;
  /** The manifest, parsed and checked. */
  readonly manifest: Manifest;
  /** The manifest's folder (or its URL's, ending in `/`): the shard paths are relative to it. */
  readonly #base: string;

  private constructor(path: string, manifest: Manifest, base: string) {
    this.path = path;
    this.manifest = manifest;
    this.#base = base;
  }

  /**
   * Read and check the manifest at `path`: a local file, or a URL read with one request when
   * it is at most 1 MiB (HttpSource's first request; larger ones by ranges pinned to its
   * ETag), at most {@link MAX_MANIFEST_BYTES} either way. Every shard path is checked to stay
   * inside the manifest's folder before any shard is opened.
   *
   * @param path the manifest's path or URL
   * @param remote how a URL is read (connections, retries, S3 signing; its `stats` count the
   *   request)
   * @returns the set
   * @throws {ContainerFormatError} (exit 1) for a manifest that cannot be read, is too large,
   *   is not valid UTF-8 JSON, fails a check of {@link parseManifest}, or names a shard outside
   *   its folder
   * @throws {RemoteError} as {@link HttpSource.open}
   */
  static async open(path: string, remote: RemoteOptions = {}): Promise<ShardSet> {
    const remoteSet = isRemote(path);
    const name = remoteSet ? urlWithoutQuery(path) : path;
    const tooLarge = (size: number) =>
      new ContainerFormatError(
        `Cannot read manifest "${name}": it is ${size} bytes, more than ${MAX_MANIFEST_BYTES}`,
      );
    let bytes: Uint8Array;
    if (remoteSet) {
      const target = await remoteTarget(path, remote);
      const source = await HttpSource.open(target.url, target.options);
      try {
        if (source.size > MAX_MANIFEST_BYTES) throw tooLarge(source.size);
        bytes = await source.readAt(0, source.size);
      } finally {
        source.close();
      }
    } else {
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path);
      } catch (error) {
        throw new ContainerFormatError(
          `Cannot read manifest "${name}": ${(error as Error).message}`,
        );
      }
      try {
        const size = (await file.stat()).size;
        if (size > MAX_MANIFEST_BYTES) throw tooLarge(size);
        bytes = await new Response(file.readable).bytes();
      } catch (error) {
        if (error instanceof ContainerFormatError) throw error;
        throw new ContainerFormatError(
          `Cannot read manifest "${name}": ${(error as Error).message}`,
        );
      }
      if (bytes.length > MAX_MANIFEST_BYTES) throw tooLarge(bytes.length);
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new ContainerFormatError(`Cannot read manifest "${name}": it is not UTF-8`);
    }
    const manifest = parseManifest(text, name);
    const base = remoteSet ? new URL(".", urlWithoutQuery(path)).href : dirname(path);
    const set = new ShardSet(name, manifest, base);
    for (const shard of manifest.shards) set.location(shard);
    return set;
  }

  /**
   * Where a shard lies: its path resolved against the manifest's folder (or URL).
   *
   * @param shard a shard of this set
   * @returns a file path or URL inside the manifest's folder
   * @throws {ContainerFormatError} when it would lie outside it
   */
  location(shard: ShardRecord): string {
    let at: string;
    if (isRemote(this.#base)) {
      const url = new URL(shard.path, this.#base);
      at = url.href;
      if (!at.startsWith(this.#base) || url.search !== "" || url.hash !== "") at = "";
    } else {
      at = join(this.#base, shard.path);
      const root = resolve(this.#base);
      if (!resolve(at).startsWith(root.endsWith(SEPARATOR) ? root : root + SEPARATOR)) at = "";
    }
    if (at === "") {
      throw new ContainerFormatError(
        `Cannot read manifest "${this.path}": shard path "${shard.path}" leads outside its folder`,
      );
    }
    return at;
  }

  /**
   * The shards to read: all, or those of one part.
   *
   * @param part `--part K/N`: N must be the manifest's `split.parts`
   * @returns the shards, in manifest order
   * @throws {UsageError} (exit 2) when N is not the manifest's number of parts
   * @throws {ContainerFormatError} (exit 1) when the manifest does not hold part K (a part's
   *   own manifest holds that part only)
   */
  shards(part?: PartSelection): ShardRecord[] {
    if (part === undefined) return this.manifest.shards;
    const parts = this.manifest.split.parts;
    if (part.count !== parts) {
      throw new UsageError(
        `Option --part ${part.index}/${part.count} does not fit "${this.path}": ` +
          `it is split into ${parts} part${parts === 1 ? "" : "s"}`,
      );
    }
    if (!this.manifest.parts.includes(part.index)) {
      const held = this.manifest.parts;
      throw new ContainerFormatError(
        `Cannot read part ${part.index} of ${part.count} from "${this.path}": it holds ` +
          `part${held.length === 1 ? "" : "s"} ${held.join(", ")} only`,
      );
    }
    return this.manifest.shards.filter((shard) => shard.part === part.index);
  }

  /**
   * The check {@link ContainerReader.open} makes of a shard's embedded index.
   *
   * @param shard a shard of this set
   * @returns where its index lies, its SHA-256 and the shard's size in bytes
   */
  expectIndex(
    shard: ShardRecord,
  ): { offset: number; length: number; sha256: string; size: number } {
    return {
      offset: shard.indexOffset,
      length: shard.indexLength,
      sha256: shard.indexSha256,
      size: shard.size,
    };
  }

  /**
   * Open a shard, its embedded index checked against the manifest.
   *
   * @param shard a shard of this set
   * @param options as {@link ContainerReader.open} (`index` is not taken: a shard is read
   *   through its own index)
   * @returns the open shard; `close()` it
   * @throws {IntegrityError} (code `INTEGRITY`) when its size or index differs from the manifest's
   * @throws {ContainerFormatError} as {@link ContainerReader.open}
   */
  async openShard(
    shard: ShardRecord,
    options: Omit<ContainerReaderOptions, "index" | "expectIndex"> = {},
  ): Promise<ContainerReader> {
    return await ContainerReader.open(this.location(shard), {
      ...options,
      expectIndex: this.expectIndex(shard),
    });
  }
}
