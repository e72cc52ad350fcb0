/**
 * Opening a container for the reading commands (`list`, `info`, `cat`).
 *
 * @module
 */

import { ContainerReader, type ContainerReaderOptions, UsageError } from "../mod.ts";
import type { ShardRecord } from "../lib/shard/manifest.ts";
import { isManifest, type PartSelection, ShardSet } from "../lib/shard/shard_set.ts";
import {
  DEFAULT_CONNECTIONS,
  DEFAULT_MAX_RANGE,
  isRemote,
  type RemoteStats,
  remoteStats,
  urlWithoutQuery,
} from "../lib/remote/http_source.ts";
import type { RemoteOptions } from "../lib/remote/remote_container.ts";
import { type CliIo, printableMessage } from "./output.ts";
import { type Flag, type FlagValues, integer } from "./flags.ts";
import type { RunSummary } from "./summary.ts";
import { count, size } from "./units.ts";

/** `--container FILE` of the reading commands (`list`, `info`, `cat`). */
export const CONTAINER_FLAG = {
  name: "container",
  type: "string",
  arg: "FILE",
  origin: "ctnr",
  help: "container to read",
} as const satisfies Flag;

/** `--index FILE` of the reading commands. */
export const INDEX_FLAG = {
  name: "index",
  type: "string",
  arg: "FILE",
  origin: "ctnr",
  option: "index",
  help: "external index (preferred over the embedded one)",
} as const satisfies Flag;

/** `--lenient` of the reading commands. */
export const LENIENT_FLAG = {
  name: "lenient",
  type: "boolean",
  origin: "ctnr",
  option: "lenient",
  help: "skip malformed index lines with a warning",
} as const satisfies Flag;

/**
 * Open `container` with the commands' options, warnings printed to stderr.
 *
 * @param container the container path, or `undefined` when none was given
 * @param index an external index
 * @param lenient skip malformed index lines
 * @param io where warnings go
 * @param summary counts the warnings, when the command has a summary
 * @returns the open container
 * @throws {UsageError} when no container was given
 */
export async function openReader(
  container: string | undefined,
  index: string | undefined,
  lenient: boolean | undefined,
  io: CliIo,
  summary?: RunSummary,
  remote?: RemoteOptions,
): Promise<ContainerReader> {
  if (container === undefined) throw new UsageError("Missing --container FILE");
  const options = readerOptions(lenient, io, summary, remote);
  if (index !== undefined) options.index = index;
  return await ContainerReader.open(container, options);
}

/**
 * Open a shard of `set` as {@link openReader} opens a container, its index checked against
 * the manifest.
 *
 * @param set the shard set
 * @param shard one of its shards
 * @returns the open shard
 */
export async function openShardReader(
  set: ShardSet,
  shard: ShardRecord,
  lenient: boolean | undefined,
  io: CliIo,
  summary?: RunSummary,
  remote?: RemoteOptions,
): Promise<ContainerReader> {
  return await set.openShard(shard, readerOptions(lenient, io, summary, remote));
}

function readerOptions(
  lenient: boolean | undefined,
  io: CliIo,
  summary?: RunSummary,
  remote?: RemoteOptions,
): ContainerReaderOptions {
  const options: ContainerReaderOptions = {
    lenient: lenient ?? false,
    onWarning: (warning) => {
      summary?.warning(warning);
      io.stderr(`ctnr: warning: ${printableMessage(warning.message)}`);
    },
  };
  if (remote !== undefined) options.remote = remote;
  return options;
}

/**
 * How `--json` names a container: a URL without its query (a presigned URL's signature stays
 * out of logs, as in messages), a file as given.
 *
 * @param container the path or URL given, or `undefined`
 * @returns the name, or `null` when none was given
 */
export function shownContainer(container: string | undefined): string | null {
  if (container === undefined) return null;
  return isRemote(container) ? urlWithoutQuery(container) : container;
}

/**
 * The flags of reading a container on a server (`http://`, `https://`, `s3://`), shared by
 * `list`, `info`, `cat`, `verify` and `extract` (README "Containers on servers").
 */
export const REMOTE_FLAGS = [
  {
    name: "connections",
    type: "string",
    arg: "N",
    origin: "ctnr",
    help: "requests in flight for a container on a server, 1 to 64 (default 8)",
  },
  {
    name: "max-range",
    type: "string",
    arg: "BYTES",
    origin: "ctnr",
    help: "most bytes one request asks for (default 8388608)",
  },
  {
    name: "no-cache",
    type: "boolean",
    origin: "ctnr",
    help: "keep no copy of a remote index (default: cached in CTNR_CACHE_DIR\nor ~/.cache/ctnr)",
  },
  {
    name: "endpoint-url",
    type: "string",
    arg: "URL",
    origin: "ctnr",
    help: "S3 endpoint for s3:// URLs (default AWS_ENDPOINT_URL_S3,\nAWS_ENDPOINT_URL, else AWS)",
  },
  {
    name: "region",
    type: "string",
    arg: "NAME",
    origin: "ctnr",
    help: "S3 region for s3:// URLs (default AWS_REGION, AWS_DEFAULT_REGION,\nelse us-east-1)",
  },
] as const satisfies readonly Flag[];

/** `-v` of `list`, `info` and `cat`: what reading a container on a server cost. */
export const REMOTE_VERBOSE_FLAG = {
  name: "verbose",
  short: "v",
  type: "boolean",
  origin: "ctnr",
  help: "at the end, what reading a container on a server cost (stderr)",
} as const satisfies Flag;

/** Largest `--max-range`, in bytes. */
const MAX_RANGE_LIMIT = 64 << 20;
/** Largest `--connections` x `--max-range`, in bytes: what the reads ahead hold at most. */
const MAX_IN_FLIGHT = 512 << 20;

/**
 * The library's remote options from the flags of {@link REMOTE_FLAGS}.
 *
 * @param values the parsed flags
 * @param signal stops the requests
 * @param container the container given: the flags are refused for a local file (and the S3
 *   ones for an http URL)
 * @returns the options, with a fresh {@link RemoteStats} to count into
 * @throws {UsageError} for a value out of range
 */
export async function remoteOptions(
  values: FlagValues<typeof REMOTE_FLAGS>,
  signal?: AbortSignal,
  container?: string,
): Promise<RemoteOptions & { stats: RemoteStats }> {
  const options: RemoteOptions & { stats: RemoteStats } = { stats: remoteStats() };
  if (container !== undefined) {
    // Options that change nothing are refused, as every command does (README "Exit codes").
    const given = REMOTE_FLAGS.map((flag) => flag.name).filter((name) =>
      values[name] !== undefined
    );
    if (!isRemote(container) && given.length > 0) {
      throw new UsageError(
        `Option --${given[0]} is for a container on a server (http://, https://, s3://), ` +
          `not the file "${container}"`,
      );
    }
    const s3Only = given.find((name) => name === "endpoint-url" || name === "region");
    if (s3Only !== undefined && !/^s3:\/\//i.test(container)) {
      throw new UsageError(`Option --${s3Only} is for an s3:// URL, not "${container}"`);
    }
  }
  if (values.connections !== undefined) {
    const n = integer("--connections", values.connections);
    if (n < 1 || n > 64) {
      throw new UsageError(`Option --connections takes 1 to 64, got ${values.connections}`);
    }
    options.connections = n;
  }
  if (values["max-range"] !== undefined) {
    const n = integer("--max-range", values["max-range"]);
    if (n < 4096 || n > MAX_RANGE_LIMIT) {
      throw new UsageError(
        `Option --max-range takes 4096 to ${MAX_RANGE_LIMIT} bytes (64 MiB), got ${n}`,
      );
    }
    options.maxRange = n;
  }
  // Each request in flight is held whole: their bytes together are bounded.
  const inFlight = (options.connections ?? DEFAULT_CONNECTIONS) *
    (options.maxRange ?? DEFAULT_MAX_RANGE);
  if (inFlight > MAX_IN_FLIGHT) {
    throw new UsageError(
      `Options --connections x --max-range would hold ${inFlight} bytes in flight; at most ` +
        `${MAX_IN_FLIGHT} (512 MiB)`,
    );
  }
  if (values["no-cache"]) options.cacheDir = null;
  if (signal !== undefined) options.signal = signal;
  if (values["endpoint-url"] !== undefined || values.region !== undefined) {
    const { s3ConfigFromEnv } = await import("../lib/remote/s3.ts");
    const config = s3ConfigFromEnv();
    if (values["endpoint-url"] !== undefined) config.endpoint = values["endpoint-url"];
    if (values.region !== undefined) config.region = values.region;
    options.s3 = config;
  }
  return options;
}

/**
 * What reading over the network cost, for `-v` and `--json`: `undefined` when no request was
 * sent (a local container).
 *
 * @param stats the counts
 * @returns a line for people, and the fields for `--json` (`remote`: requests, bytes received,
 *   retries)
 */
export function remoteReport(
  stats: RemoteStats | undefined,
): { line: string; fields: Record<string, unknown> } | undefined {
  if (stats === undefined || stats.requests === 0) return undefined;
  return {
    line: `Remote: ${count(stats.requests, "request")}, ${size(stats.bytesReceived)} received, ${
      count(stats.retries, "retry", "retries")
    }`,
    fields: {
      remote: {
        requests: stats.requests,
        bytes_received: stats.bytesReceived,
        retries: stats.retries,
      },
    },
  };
}

/**
 * With `-v` ({@link REMOTE_VERBOSE_FLAG}), the {@link remoteReport} line on stderr; nothing
 * when no request was sent.
 *
 * @param stats the counts
 * @param verbose whether `-v` was given
 * @param io where the line goes
 */
export function printRemoteCost(
  stats: RemoteStats,
  verbose: boolean | undefined,
  io: CliIo,
): void {
  const report = remoteReport(stats);
  if (verbose && report !== undefined) io.stderr(`ctnr: ${report.line}`);
}

/**
 * The shard set `container` names when it is a manifest (README "Reading a shard set"), read
 * and checked; `undefined` for a container.
 *
 * @param container the container's path or URL
 * @param index `--index`, which a set does not take (each shard is read through its own)
 * @param remote how a manifest URL is read
 * @returns the set, or `undefined`
 * @throws {UsageError} for `--index` with a manifest
 * @throws {ContainerFormatError} as {@link ShardSet.open}
 */
export async function openShardSet(
  container: string | undefined,
  index: string | undefined,
  remote?: RemoteOptions,
): Promise<ShardSet | undefined> {
  if (container === undefined || !isManifest(container)) return undefined;
  if (index !== undefined) {
    throw new UsageError(
      `Option --index does not go with the manifest "${container}": each shard is read ` +
        `through its own index`,
    );
  }
  return await ShardSet.open(container, remote);
}

/** `--part K/N` of `verify` and `extract` on a shard set. */
export const PART_FLAG = {
  name: "part",
  type: "string",
  arg: "K/N",
  origin: "ctnr",
  help: "of a shard set (a manifest), read only part K of N (K from 0;\none container is " +
    "part 0/1); --part N takes K from the scheduler, as create does",
} as const satisfies Flag;

/** `--shard-jobs N` of `verify` and `extract` on a shard set. */
export const SHARD_JOBS_FLAG = {
  name: "shard-jobs",
  type: "string",
  arg: "N",
  origin: "ctnr",
  help:
    "of a shard set, shards read at once, 1 to 64 (default 2;\nnothing to do for one container)",
} as const satisfies Flag;

/** The environment variables a scheduler sets to a job's index in an array, in the order read. */
export const PART_VARIABLES = [
  "JOB_COMPLETION_INDEX",
  "SLURM_ARRAY_TASK_ID",
  "AWS_BATCH_JOB_ARRAY_INDEX",
] as const;

/**
 * `--part K/N` read, the same in every command: `K/N`, or `N` with K taken from the first of
 * {@link PART_VARIABLES} that is set.
 *
 * @param text `K/N` (K from 0 to N - 1) or `N`
 * @returns the part
 * @throws {UsageError} for another shape, K out of range, or `N` with no scheduler variable set
 */
export function parsePart(text: string): PartSelection {
  const match = /^(?:(\d*)\/)?(\d+)$/.exec(text);
  if (match === null) throw new UsageError(`Option --part takes K/N or N, got "${text}"`);
  const count = integer("--part", match[2]!);
  let index: number;
  let from = "";
  if (match[1] !== undefined && match[1] !== "") index = integer("--part", match[1]);
  else {
    // Each read spelled out: tests/release_test.ts checks them against the binary's list.
    const found = ([
      ["JOB_COMPLETION_INDEX", env("JOB_COMPLETION_INDEX")],
      ["SLURM_ARRAY_TASK_ID", env("SLURM_ARRAY_TASK_ID")],
      ["AWS_BATCH_JOB_ARRAY_INDEX", env("AWS_BATCH_JOB_ARRAY_INDEX")],
    ] as const).find(([, value]) => value !== undefined);
    if (found === undefined) {
      throw new UsageError(
        `Option --part ${text} gives no K, and none of ${PART_VARIABLES.join(", ")} ` +
          `is set: give --part K/${count}`,
      );
    }
    if (!/^\d+$/.test(found[1]!)) {
      throw new UsageError(`${found[0]} is "${found[1]}", not a part number`);
    }
    index = Number(found[1]);
    from = ` (K from ${found[0]})`;
  }
  if (count < 1) throw new UsageError(`Option --part: N must be at least 1, got ${text}`);
  if (index >= count) {
    throw new UsageError(`Option --part: K must be 0 to N-1, got ${index}/${count}${from}`);
  }
  return { index, count };
}

/** An environment variable, or `undefined` when it is not set or not allowed to be read. */
function env(name: (typeof PART_VARIABLES)[number]): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}
