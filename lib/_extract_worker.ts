/**
 * Write worker of `extract`: writes a batch of small files (verify, gunzip,
 * temp file, rename) and answers with one outcome per file.
 *
 * @module
 */

import {
  type FaultRecord,
  type FileJob,
  type FileOutcome,
  type FileSettings,
  toFault,
  writeFileJob,
} from "./_extract_file.ts";
import { serveRequests } from "./_worker_pool.ts";

/** A batch of files to write; job `i` has its stored bytes at `payloads[at[i] .. at[i+1])`. */
export interface WriteBatch {
  jobs: FileJob[];
  at: number[];
  payloads: Uint8Array;
  settings: FileSettings;
}

/** One outcome per job. */
export type WriteBatchResult = (FileOutcome | FaultRecord)[];

serveRequests<WriteBatch, WriteBatchResult>(({ jobs, at, payloads, settings }) => {
  const result = jobs.map((job, i) => {
    try {
      return writeFileJob(job, payloads.subarray(at[i]!, at[i + 1]!), settings);
    } catch (error) {
      return toFault(error);
    }
  });
  return Promise.resolve({ result });
});
