/**
 * Opening a container (or an index) that lies on a server: `http://`, `https://` (a presigned
 * URL as it is) or `s3://bucket/key` (signed with AWS Signature V4, lib/remote/s3.ts). Gives
 * {@link ContainerReader} the random-access source of its payloads and a local copy of its
 * index (from the index cache, lib/remote/index_cache.ts, or fetched and cached now).
 *
 * @module
 */

import { RemoteError } from "../errors.ts";
import {
  FOOTER_SIZE,
  footerIndexLength,
  TRAILER_HEADER_SIZE,
  type TrailerLocation,
} from "../format/trailer.ts";
import { type RandomAccess, readRange, sliceOf } from "../io/random_access.ts";
import {
  DEFAULT_MAX_RANGE,
  HttpSource,
  type HttpSourceOptions,
  type RemoteStats,
  remoteStats,
  urlWithoutQuery,
} from "./http_source.ts";
import { warning, type WarningHandler } from "../warnings.ts";
import { type CachedIndex, defaultCacheDir, IndexCache } from "./index_cache.ts";
import type { S3Config } from "./s3.ts";

/** How containers on servers are read: {@link HttpSourceOptions} and the cache. */
export interface RemoteOptions extends Omit<HttpSourceOptions, "sign" | "name" | "stats"> {
  /**
   * The index cache folder; `null`: no cache (the index goes to a temp folder, removed at
   * close). @default see {@link defaultCacheDir}
   */
  cacheDir?: string | null;
  /**
   * Trust a cached index without a request of its own: the first read of a payload checks the
   * version (`If-Match`); one that fails with `REMOTE_CHANGED` drops the cached index (see
   * {@link RemoteContainer.confirmedLazily}). @default false: one request confirms it at open
   */
  confirmLazily?: boolean;
  /** Endpoint, region and credentials for `s3://` URLs. @default from the AWS_* variables */
  s3?: S3Config;
  /** Counts requests, bytes and retries of the container and its index. */
  stats?: RemoteStats;
  /** Receives warnings (`CACHE_UNUSABLE`: the cache folder cannot take an index). */
  onWarning?: WarningHandler;
}

/** A remote object ready to read: its source, the name for messages, the cache key. */
export interface RemoteTarget {
  /** The URL as given, without its query: for messages. */
  name: string;
  /**
   * The cache key: the URL without the parameters of a presigned URL's signature (see
   * {@link cacheKeyOf}); an `s3://` URL with its endpoint.
   */
  key: string;
  /** The http(s) URL requested. */
  url: string;
  /** The source's options, signing included. */
  options: HttpSourceOptions;
}

/**
 * Query parameters that sign a URL rather than name an object: AWS SigV2/SigV4 and GCS
 * (`X-Amz-*`, `X-Goog-*`, `Signature`, `Expires`, `AWSAccessKeyId`, `GoogleAccessId`), Azure SAS
 * (`sv`, `se`, `sig`, ...).
 */
const SIGNING_PARAMETERS =
  /^(x-amz-.*|x-goog-.*|signature|expires|awsaccesskeyid|googleaccessid|sig|se|st|sp|sv|sr|spr|srt|ss|ses|skoid|sktid|skt|ske|sks|skv|sdd|sip)$/i;

/**
 * The index cache's key of a URL: without its fragment, user info and the parameters of a
 * presigned URL's signature (they change, the object does not), the other parameters kept in
 * order of name (`?versionId=...` names another object).
 *
 * @param url an http(s) or s3 URL
 * @returns the key
 */
export function cacheKeyOf(url: string): string {
  let kept: [string, string][];
  try {
    kept = [...new URL(url).searchParams].filter(([name]) => !SIGNING_PARAMETERS.test(name));
  } catch {
    kept = [];
  }
  kept.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const base = urlWithoutQuery(url);
  return kept.length === 0 ? base : `${base}?${new URLSearchParams(kept)}`;
}

/**
 * Resolve `path` (http, https or s3 URL) into what requests it.
 *
 * @param path the URL
 * @param options how to read
 * @returns the target
 * @throws {UsageError} for an `s3://` URL without a bucket or credentials
 */
export async function remoteTarget(path: string, options: RemoteOptions): Promise<RemoteTarget> {
  const stats = options.stats ?? remoteStats();
  // The options of the cache and of s3:// are not the source's.
  const {
    cacheDir: _cacheDir,
    confirmLazily: _confirmLazily,
    s3: _s3,
    onWarning: _onWarning,
    ...source
  } = options;
  const base: HttpSourceOptions = { ...source, stats, name: urlWithoutQuery(path) };
  if (/^s3:\/\//i.test(path)) {
    // Loaded only here: a command that reads no s3:// URL loads no npm package.
    const { s3Request, s3ConfigFromEnv } = await import("./s3.ts");
    const target = await s3Request(path, options.s3 ?? s3ConfigFromEnv());
    return {
      name: urlWithoutQuery(path),
      key: `${cacheKeyOf(path)} at ${urlWithoutQuery(target.url)}`,
      url: target.url,
      options: { ...base, sign: (request) => target.sign(request) },
    };
  }
  return { name: urlWithoutQuery(path), key: cacheKeyOf(path), url: path, options: base };
}

/**
 * The cache for `options`: the folder given, the default one, or a temp folder removed at close.
 */
export async function openCache(
  options: RemoteOptions,
): Promise<{ cache: IndexCache | undefined; close(): void }> {
  const dir = options.cacheDir === null ? undefined : options.cacheDir ?? defaultCacheDir();
  if (dir !== undefined) return { cache: new IndexCache(dir), close: () => {} };
  let temp: string;
  try {
    temp = await Deno.makeTempDir({ prefix: "ctnr-index-" });
  } catch {
    return { cache: undefined, close: () => {} }; // no --allow-write there: indexes in memory
  }
  return {
    cache: new IndexCache(temp),
    close: () => {
      try {
        Deno.removeSync(temp, { recursive: true });
      } catch { /* gone */ }
    },
  };
}

/** A container on a server, opened: see {@link openRemoteContainer}. */
export interface RemoteContainer {
  /** The payloads (and, cold, the trailer) by ranges. */
  source: HttpSource;
  /** Where the index lies, when it came from the cache (else the caller searches `source`). */
  trailer: TrailerLocation | undefined;
  /** A local copy of the embedded index, when it came from the cache. */
  indexCopy: (RandomAccess & { close(): void }) | undefined;
  /** The URL without its query. */
  name: string;
  /** Whether the cached index was trusted without a request (`confirmLazily`). */
  confirmedLazily: boolean;
  /**
   * Announce the reads of the trailer that ctnr's footer (in the tail read at open) names, its
   * header and index, in requests of {@link DEFAULT_MAX_RANGE}: the header read before the
   * index costs no request of its own, and a cold `list` stays within 1 + ceil(index bytes /
   * 8 MiB) requests. Does nothing without such a footer (the original tools' trailer).
   *
   * @returns whether the tail ends with ctnr's footer (the trailer need not be searched for)
   */
  planTrailer(): Promise<boolean>;
  /** Copy the embedded index at `trailer` into the cache; see {@link RemoteContainer}. */
  copyIndex(trailer: TrailerLocation): Promise<(RandomAccess & { close(): void }) | undefined>;
  /** Drop the cached index of this container (found stale). */
  dropCachedIndex(): Promise<void>;
  /** Close the cache (a temp one is removed). */
  closeCache(): void;
}

/**
 * Open a container on a server: from the index cache without a request (`confirmLazily`) or
 * with one that confirms its version, else with the one request of {@link HttpSource.open}.
 *
 * @param path the URL
 * @param options how to read
 * @returns the container's source and, when cached, its index
 * @throws {RemoteError} as {@link HttpSource.open}
 */
export async function openRemoteContainer(
  path: string,
  options: RemoteOptions,
): Promise<RemoteContainer> {
  const target = await remoteTarget(path, options);
  const { cache, close: closeCache } = await openCache(options);
  try {
    const hit = await cache?.lookup(target.key);
    if (hit !== undefined && hit.entry.trailer !== null) {
      const source = options.confirmLazily
        ? HttpSource.fromVersion(target.url, hit.entry, target.options)
        : await confirmedSource(target, cache, hit);
      if (source !== undefined) {
        return remoteContainer(target, cache, closeCache, source, hit.entry.trailer, hit.index, {
          lazily: options.confirmLazily ?? false,
          onWarning: options.onWarning,
        });
      }
    } else hit?.index.close();
    const source = await HttpSource.open(target.url, target.options);
    return remoteContainer(target, cache, closeCache, source, undefined, undefined, {
      lazily: false,
      onWarning: options.onWarning,
    });
  } catch (error) {
    closeCache();
    throw error;
  }
}

/**
 * A source for the version `hit` was cached for, confirmed by one request. When the request
 * fails, `hit`'s index is closed and: the object changed since, its entry is dropped and
 * `undefined` returned; else the error is thrown ({@link HttpSource.confirm}).
 */
async function confirmedSource(
  target: RemoteTarget,
  cache: IndexCache | undefined,
  hit: { entry: CachedIndex; index: { close(): void } },
): Promise<HttpSource | undefined> {
  const source = HttpSource.fromVersion(target.url, hit.entry, target.options);
  try {
    await source.confirm();
    return source;
  } catch (error) {
    source.close();
    hit.index.close();
    if (!(error instanceof RemoteError && error.code === "REMOTE_CHANGED")) throw error;
    await cache?.drop(target.key);
    return undefined;
  }
}

function remoteContainer(
  target: RemoteTarget,
  cache: IndexCache | undefined,
  closeCache: () => void,
  source: HttpSource,
  trailer: TrailerLocation | undefined,
  indexCopy: (RandomAccess & { close(): void }) | undefined,
  flags: { lazily: boolean; onWarning?: WarningHandler | undefined },
): RemoteContainer {
  let plannedFrom: number | undefined;
  return {
    source,
    trailer,
    indexCopy,
    name: target.name,
    confirmedLazily: flags.lazily,
    planTrailer: async () => {
      const size = source.size;
      if (size < TRAILER_HEADER_SIZE + FOOTER_SIZE) return false;
      if (!source.holds(size - FOOTER_SIZE, FOOTER_SIZE)) return false;
      const length = footerIndexLength(await source.readAt(size - FOOTER_SIZE, FOOTER_SIZE));
      if (length === undefined) return false;
      const start = size - FOOTER_SIZE - length - TRAILER_HEADER_SIZE;
      if (start < 0 || source.holds(start, TRAILER_HEADER_SIZE)) return true;
      source.plan([[start, size - FOOTER_SIZE]], { maxRange: DEFAULT_MAX_RANGE });
      plannedFrom = start;
      return true;
    },
    copyIndex: async (at) => {
      const etag = source.version.etag;
      // Small and unpinned indexes are read from the tail held in memory, or by ranges.
      if (etag === undefined) return undefined;
      return await storeIndex(
        cache,
        { key: target.key, etag, size: source.size, trailer: at },
        at.indexLength,
        (append) =>
          copyRange(
            source,
            at.indexOffset,
            at.indexLength,
            append,
            plannedFrom !== undefined &&
              plannedFrom <= at.indexOffset,
          ),
        (message) =>
          flags.onWarning?.(warning(
            "CACHE_UNUSABLE",
            `Cannot keep the index of "${target.name}" in the cache: ${message}; read without it`,
          )),
      );
    },
    dropCachedIndex: async () => await cache?.drop(target.key),
    closeCache,
  };
}

/**
 * Fetch an index that is an object of its own (`--index URL`) into the cache, or take it from
 * there: one request confirms a cached copy.
 *
 * @param path the index URL
 * @param options how to read
 * @returns the index bytes as a local source (`close()` it) and the URL without its query
 * @throws {RemoteError} as {@link HttpSource.open}
 */
export async function openRemoteIndex(
  path: string,
  options: RemoteOptions,
): Promise<{ index: RandomAccess & { close(): void }; name: string }> {
  const target = await remoteTarget(path, options);
  const { cache, close: closeCache } = await openCache(options);
  let source: HttpSource | undefined;
  try {
    const hit = await cache?.lookup(target.key);
    if (hit !== undefined && hit.entry.trailer === null) {
      const confirmed = await confirmedSource(target, cache, hit);
      if (confirmed !== undefined) {
        confirmed.close();
        return { index: withClose(hit.index, closeCache), name: target.name };
      }
    } else hit?.index.close();
    source = await HttpSource.open(target.url, target.options);
    const opened = source;
    const etag = opened.version.etag;
    const entry = {
      key: etag === undefined ? `${target.key} (no ETag)` : target.key,
      etag: etag ?? "",
      size: opened.size,
      trailer: null,
    };
    const index = await storeIndex(
      cache,
      entry,
      opened.size,
      (append) => copyRange(opened, 0, opened.size, append),
      (message) =>
        options.onWarning?.(warning(
          "CACHE_UNUSABLE",
          `Cannot keep the index "${target.name}" in the cache: ${message}; read without it`,
        )),
    );
    if (etag === undefined) await cache?.drop(entry.key); // no ETag: never used again
    return { index: withClose(index, closeCache), name: target.name };
  } catch (error) {
    closeCache();
    throw error;
  } finally {
    source?.close();
  }
}

/**
 * Write an index into the cache; when the cache folder cannot take it (missing, read-only, a
 * file, full, not granted), say so through `warn` and keep the index in memory instead.
 */
async function storeIndex(
  cache: IndexCache | undefined,
  entry: CachedIndex,
  length: number,
  write: (append: (bytes: Uint8Array) => Promise<void>) => Promise<void>,
  warn: (message: string) => void,
): Promise<RandomAccess & { close(): void }> {
  if (cache !== undefined) {
    try {
      return await cache.store(entry, length, write);
    } catch (error) {
      const local = error instanceof Error &&
        Object.values(Deno.errors).some((kind) => error instanceof kind);
      if (!local) throw error; // the server's or the network's fault: not the cache's
      warn(`${(error as Error).message} (${cache.dir})`);
    }
  }
  const bytes = new Uint8Array(length);
  let at = 0;
  await write((piece) => {
    bytes.set(piece, at);
    at += piece.length;
    return Promise.resolve();
  });
  return sliceOf(
    { readAt: (position, n) => Promise.resolve(bytes.subarray(position, position + n)) },
    0,
    length,
  );
}

function withClose<T extends { close(): void }>(value: T, also: () => void): T {
  const close = value.close.bind(value);
  value.close = () => {
    close();
    also();
  };
  return value;
}

/**
 * Copy `[start, start + length)` of a remote source in requests of at most 8 MiB (whatever
 * `--max-range` says), several in flight; `planned` when a plan already covers them.
 */
async function copyRange(
  source: HttpSource,
  start: number,
  length: number,
  append: (bytes: Uint8Array) => Promise<void>,
  planned = false,
): Promise<void> {
  if (length === 0) return;
  if (!source.holds(start, length) && !planned) {
    source.plan([[start, start + length]], { maxRange: DEFAULT_MAX_RANGE });
  }
  for await (const piece of readRange(source, start, length, DEFAULT_MAX_RANGE)) {
    await append(piece);
  }
}
