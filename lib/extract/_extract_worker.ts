/**
 * Write worker of `extract`: writes a batch of small files (verify, gunzip,
 * temp file, rename) and answers with one outcome per file.
 *
 * @module
 */

import {
  type FaultRecord,
  type FileSettings,
  type PackedJobs,
  toFault,
  unpackJobs,
  writeFileJob,
} from "./file_writer.ts";
import { serveRequests } from "../io/worker_pool.ts";

/**
 * A batch of files to write, packed (one string and one number array clone far faster than
 * hundreds of objects): see {@link packJobs}. Job `i` has its stored bytes at
 * `payloads[at[i] .. at[i+1])`.
 */
export interface WriteBatch {
  jobs: PackedJobs;
  at: Float64Array;
  payloads: Uint8Array;
  settings: FileSettings;
}

/**
 * One code per job (0 extracted, 1 skipped, 2 failed) and, in order, the
 * faults of the failed ones.
 */
export interface WriteBatchResult {
  codes: Uint8Array;
  faults: FaultRecord[];
}

serveRequests<WriteBatch, WriteBatchResult>(({ jobs, at, payloads, settings }) => {
  const list = unpackJobs(jobs);
  const codes = new Uint8Array(list.length);
  const faults: FaultRecord[] = [];
  list.forEach((job, i) => {
    try {
      codes[i] = writeFileJob(job, payloads.subarray(at[i]!, at[i + 1]!), settings) === "skipped"
        ? 1
        : 0;
    } catch (error) {
      codes[i] = 2;
      faults.push(toFault(error));
    }
  });
  return Promise.resolve({ result: { codes, faults }, transfer: [codes.buffer] });
});
