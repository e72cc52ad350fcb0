/**
 * Read worker of `create`: loads a batch of small source files and sends
 * back their metadata and one buffer holding every payload.
 *
 * @module
 */

import { gzip, readSourceFile, sha256Hex, SMALL_FILE, type SourceRead } from "./_source_file.ts";
import { serveRequests } from "./_worker_pool.ts";

/**
 * A batch of files to read: their paths joined by NUL (one string clones faster than many).
 * Once `budget` bytes are read, a file that would go past it is answered `large` (the caller
 * streams it), so a batch of big files stays bounded in memory.
 */
export interface ReadBatch {
  paths: string;
  compress: boolean;
  budget: number;
}

/**
 * Per file, in `numbers` (5 a file): kind (0 small, 1 large, 2 special, 3 error), mode, mtime,
 * original size, stored size; `sha256` holds, for compressed batches only, 128 hex digits a small
 * file (stored, then original; plain payloads are hashed by the caller); `payloads` the stored
 * bytes back to back from its start (it may be longer); `errors` the messages of kind 3.
 */
export interface ReadBatchResult {
  numbers: Float64Array;
  sha256: string;
  payloads: Uint8Array;
  errors: string[];
}

serveRequests<ReadBatch, ReadBatchResult>(({ paths, compress, budget }) => {
  const list = paths.split("\0");
  const numbers = new Float64Array(list.length * 5);
  const digests: string[] = [];
  const errors: string[] = [];
  // Payloads back to back in one buffer: plain files are read straight into it (no copy).
  let packed = new Uint8Array(Math.min(budget, 1 << 20) + 1);
  let total = 0;
  let original = 0; // bytes read
  const room = (length: number): Uint8Array => {
    if (total + length > packed.length) {
      const grown = new Uint8Array(Math.max(packed.length * 2, total + length));
      grown.set(packed.subarray(0, total));
      packed = grown;
    }
    return packed.subarray(total, total + length);
  };
  for (let i = 0; i < list.length; i++) {
    const limit = Math.min(SMALL_FILE, Math.max(0, budget - original));
    // Compressed: read into a buffer of its own; only the gzip member goes into `packed`.
    const read = readSourceFile(list[i]!, limit, compress ? undefined : room);
    const at = i * 5;
    if (read.kind === "raw") {
      numbers[at] = 0;
      numbers[at + 1] = read.mode;
      numbers[at + 2] = read.mtime;
      numbers[at + 3] = read.bytes.length;
      original += read.bytes.length;
      if (compress) {
        const payload = gzip(read.bytes);
        digests.push(sha256Hex(payload), sha256Hex(read.bytes));
        room(payload.length).set(payload);
        numbers[at + 4] = payload.length;
        total += payload.length;
      } else {
        // Plain payloads are hashed by the main thread, which otherwise waits on this worker.
        numbers[at + 4] = read.bytes.length;
        total += read.bytes.length;
      }
    } else {
      numbers[at] = KIND_CODE[read.kind];
      if (read.kind === "large") {
        numbers[at + 1] = read.mode;
        numbers[at + 2] = read.mtime;
      } else if (read.kind === "error") errors.push(read.message);
    }
  }
  return Promise.resolve({
    result: { numbers, sha256: digests.join(""), payloads: packed, errors },
    transfer: [packed.buffer, numbers.buffer],
  });
});

const KIND_CODE: Record<Exclude<SourceRead["kind"], "small">, number> = {
  large: 1,
  special: 2,
  error: 3,
};
