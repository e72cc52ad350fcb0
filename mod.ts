/**
 * ctnr packs a folder tree into one CTNRv1 container file and extracts it
 * back, verified: every payload carries a SHA-256, extraction writes each
 * file through a temp file and a rename, and creation resumes after a crash.
 *
 * The format is the one of the original Python tools (`create_container.py`,
 * `extract_container_updated.py`); containers go both ways between them.
 *
 * @example Pack, list, read one entry, extract
 * ```ts
 * import { ContainerReader, createContainer, extractContainer } from "@ctnr/ctnr";
 *
 * const work = await Deno.makeTempDir();
 * try {
 *   await Deno.mkdir(`${work}/src/docs`, { recursive: true });
 *   await Deno.writeTextFile(`${work}/src/docs/a.txt`, "hello");
 *   const container = `${work}/data.ctnr`;
 *
 *   const created = await createContainer(`${work}/src`, container, {
 *     compress: true,
 *     finalize: true,
 *   });
 *   if (created.added !== 1) throw new Error("expected one file");
 *
 *   const reader = await ContainerReader.open(container);
 *   try {
 *     const entry = await reader.find("docs/a.txt");
 *     const text = await new Response(reader.open(entry!)).text();
 *     if (text !== "hello") throw new Error("unexpected content");
 *   } finally {
 *     reader.close();
 *   }
 *
 *   const extracted = await extractContainer(container, `${work}/out`);
 *   if (extracted.extracted !== 1) throw new Error("expected one file");
 *   if (await Deno.readTextFile(`${work}/out/docs/a.txt`) !== "hello") throw new Error("bad copy");
 * } finally {
 *   await Deno.remove(work, { recursive: true });
 * }
 * ```
 *
 * @module
 */

export { createContainer } from "./lib/create/create_container.ts";
export {
  type CreateOptions,
  type CreatePhase,
  type CreateProgress,
  type CreateResult,
} from "./lib/create/options.ts";
export { finalizeContainer, type FinalizeOptions } from "./lib/create/finalize.ts";
export { ContainerWriter } from "./lib/create/container_writer.ts";
export type {
  ContainerWriterOptions,
  EntryHeader,
  PieceReader,
  PreparedPayload,
} from "./lib/create/writer_options.ts";
export type { CtnrWarning, WarningCode, WarningHandler } from "./lib/warnings.ts";
export {
  type ExtractAction,
  type ExtractOptions,
  type ExtractPhase,
  type ExtractProgress,
  type ExtractResult,
} from "./lib/extract/options.ts";
export { extractContainer } from "./lib/extract/extract_container.ts";
export { type ExtractPlan, planExtraction, type PlanOptions } from "./lib/extract/plan.ts";
export {
  ContainerReader,
  type ContainerReaderOptions,
  type IndexOrigin,
  type RecordOptions,
} from "./lib/read/container_reader.ts";
export {
  type ContainerInfo,
  containerInfo,
  type IndexFileInfo,
} from "./lib/read/container_info.ts";
export {
  IndexReader,
  type IndexReaderOptions,
  type IndexRecord,
} from "./lib/format/index_reader.ts";
export { checkRelpath } from "./lib/safety/relpath.ts";
export { Selection } from "./lib/selection.ts";
export { type CaseFolding } from "./lib/safety/path_guard.ts";
export {
  DEFAULT_FOLDER_MODE,
  EMPTY_SHA256,
  encodeEntry,
  type EntryType,
  type IndexEntry,
  parseEntry,
} from "./lib/format/entry.ts";
export {
  type CutTrailer,
  findTrailer,
  FOOTER_MAGIC,
  searchTrailer,
  TRAILER_MAGIC,
  type TrailerLocation,
  type TrailerSearch,
} from "./lib/format/trailer.ts";
export { type RandomAccess } from "./lib/io/random_access.ts";
export { DENO_FILE_LAYER, type FileLayer, type LayerFile } from "./lib/io/file_layer.ts";
export {
  type PrescanTotals,
  type WalkEntry,
  type WalkEntryKind,
  type WalkOptions,
  type WalkPatterns,
  walkTree,
} from "./lib/create/walk.ts";
export { type StatusFields, StatusFile, type StatusFormat } from "./lib/io/status_file.ts";
export {
  BusyError,
  ConflictError,
  type ContainerFormatCode,
  ContainerFormatError,
  CtnrError,
  type CtnrErrorCode,
  EnvironmentError,
  IndexFormatError,
  IntegrityError,
  InterruptedError,
  RemoteError,
  type RemoteErrorCode,
  SourceError,
  UnsafeEntryError,
  UsageError,
} from "./lib/errors.ts";
export {
  HttpSource,
  type HttpSourceOptions,
  isRemote,
  type RemoteStats,
  type RemoteVersion,
} from "./lib/remote/http_source.ts";
export { type RemoteOptions } from "./lib/remote/remote_container.ts";
export {
  parseS3Url,
  presignS3Url,
  type S3Config,
  s3ConfigFromEnv,
  type S3Location,
  type S3Request,
  s3Request,
} from "./lib/remote/s3.ts";
export {
  createShards,
  shardNames,
  type ShardOptions,
  type ShardResult,
} from "./lib/shard/create_shards.ts";
export { mergeManifests } from "./lib/shard/merge.ts";
export {
  compareRelpaths,
  encodeManifest,
  type Manifest,
  MANIFEST_SUFFIX,
  parseManifest,
  partOf,
  partOfRelpath,
  shardFor,
  type ShardRecord,
  type SplitMethod,
} from "./lib/shard/manifest.ts";
