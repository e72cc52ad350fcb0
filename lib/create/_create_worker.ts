/**
 * Read worker of `create`: loads a batch of small source files with
 * {@link readBatch} and sends back their metadata and one buffer holding
 * every payload. Plain payloads are hashed by the main thread, which
 * otherwise waits on this worker, unless the batch asks (`hash`: the main
 * thread is the one behind).
 *
 * @module
 */

import { type ReadBatch, readBatch, type ReadBatchResult } from "./_source_file.ts";
import { serveRequests } from "../io/worker_pool.ts";

serveRequests<ReadBatch, ReadBatchResult>((request) => {
  const result = readBatch(request);
  return Promise.resolve({ result, transfer: [result.payloads.buffer, result.numbers.buffer] });
});
