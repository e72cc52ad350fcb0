/**
 * Read worker of `create`: loads a batch of small source files and sends
 * back their metadata and one buffer holding every payload.
 *
 * @module
 */

import { loadSourceFile, type SourceRead } from "./_source_file.ts";
import { serveRequests } from "./_worker_pool.ts";

/** A batch of files to read. */
export interface ReadBatch {
  paths: string[];
  compress: boolean;
}

/** Per file: the read result without its payload, plus where the payload sits in `payloads`. */
export type ReadBatchResult = {
  items: (
    | Exclude<SourceRead, { kind: "small" }>
    | (Omit<Extract<SourceRead, { kind: "small" }>, "payload"> & {
      at: number;
      length: number;
    })
  )[];
  payloads: Uint8Array;
};

serveRequests<ReadBatch, ReadBatchResult>(async ({ paths, compress }) => {
  const reads: SourceRead[] = [];
  for (const path of paths) reads.push(await loadSourceFile(path, compress));
  let total = 0;
  for (const read of reads) if (read.kind === "small") total += read.payload.length;
  const payloads = new Uint8Array(total);
  let at = 0;
  const items: ReadBatchResult["items"] = reads.map((read) => {
    if (read.kind !== "small") return read;
    const { payload, ...rest } = read;
    payloads.set(payload, at);
    at += payload.length;
    return { ...rest, at: at - payload.length, length: payload.length };
  });
  return { result: { items, payloads }, transfer: [payloads.buffer] };
});
