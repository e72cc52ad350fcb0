/**
 * The write buffer of create (lib/create/payload_buffer.ts): payloads held as views, and a read
 * batch's buffer handed back to be filled again only once its owner released it and what is
 * held of it is written.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PayloadBuffer } from "../lib/create/payload_buffer.ts";
import { SpareBuffers } from "../lib/create/spare_buffers.ts";

Deno.test("PayloadBuffer hands a buffer back only once it is released and its bytes are written", async () => {
  const recycled: ArrayBufferLike[] = [];
  const buffer = new PayloadBuffer((b) => recycled.push(b));
  const batch = new Uint8Array(64).fill(1);
  const other = new Uint8Array(8).fill(2); // a payload of its own (a file read on its own)
  const written: number[] = [];
  const write = (bytes: Uint8Array) => {
    written.push(...bytes);
    return Promise.resolve();
  };
  buffer.hold(batch.subarray(0, 16));
  buffer.hold(other);
  await buffer.flush(write);
  // Written, but not released: the rest of the batch is still to come, views into it.
  assert.equal(recycled.length, 0);
  buffer.hold(batch.subarray(16, 20));
  buffer.release(batch.buffer); // every payload of the batch is held now
  assert.equal(recycled.length, 0, "one of its payloads is still to be written");
  await buffer.flush(write);
  assert.deepEqual(recycled, [batch.buffer]);
  assert.deepEqual(written, [...Array(16).fill(1), ...Array(8).fill(2), 1, 1, 1, 1]);
  // Released with nothing of it held: at once; a buffer never released is never handed back.
  const done = new Uint8Array(32);
  buffer.release(done.buffer);
  assert.deepEqual(recycled, [batch.buffer, done.buffer]);
  assert.ok(!recycled.includes(other.buffer));
});

Deno.test("SpareBuffers keeps a buffer once, however often it is put", () => {
  const spare = new SpareBuffers();
  const buffer = new ArrayBuffer(64 << 10);
  spare.put(buffer);
  spare.put(buffer); // released twice by a library caller
  assert.equal(spare.take(), buffer);
  assert.equal(spare.take(), undefined, "handed to two batches at once");
});
