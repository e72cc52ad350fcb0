/**
 * Write worker of `extract`: writes a batch of small files of one folder
 * (verify, gunzip, temp file, rename), once the folder is checked to be the
 * one the run made or met, and answers with one outcome per file.
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
import { checkFolder, type FolderCheck } from "../safety/folder_check.ts";

/**
 * A batch of files of one folder to write, packed (one string and one number array clone far
 * faster than hundreds of objects): see {@link packJobs}. Job `i` has its stored bytes at
 * `payloads[at[i] .. at[i+1])`.
 */
export interface WriteBatch {
  jobs: PackedJobs;
  at: Float64Array;
  payloads: Uint8Array;
  settings: FileSettings;
  /** The folder every file of the batch goes into, checked once before the first is written. */
  folder: FolderCheck;
}

/**
 * One code per job (0 extracted, 1 skipped, 2 failed) and, in order, the
 * faults of the failed ones.
 */
export interface WriteBatchResult {
  codes: Uint8Array<ArrayBuffer>;
  faults: FaultRecord[];
}

serveRequests<WriteBatch, WriteBatchResult>((batch) => {
  const result = writeBatch(batch);
  return Promise.resolve({ result, transfer: [result.codes.buffer] });
});

/**
 * Write a batch: check its folder (one `lstat`), then each file in turn. A folder that is no
 * longer the one the run made or met fails every file of the batch, none written.
 *
 * @param batch the files and their folder
 * @returns one code per file and the faults of the failed ones
 */
export function writeBatch({ jobs, at, payloads, settings, folder }: WriteBatch): WriteBatchResult {
  const list = unpackJobs(jobs);
  const codes = new Uint8Array(list.length);
  const faults: FaultRecord[] = [];
  try {
    checkFolder(folder);
  } catch (error) {
    const fault = toFault(error);
    codes.fill(2);
    return { codes, faults: list.map(() => fault) };
  }
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
  return { codes, faults };
}
