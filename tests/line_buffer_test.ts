import assert from "node:assert/strict";
import { LineBuffer } from "../cli/line_buffer.ts";
import type { CliIo } from "../cli/output.ts";

function recordingIo(): { io: CliIo; writes: string[] } {
  const writes: string[] = [];
  const io: CliIo = {
    stdout: (text) => writes.push(text),
    stderr: () => {},
    writeBytes: () => Promise.resolve(),
    isTerminal: false,
  };
  return { io, writes };
}

Deno.test("LineBuffer writes lines in blocks of about 64 KiB, none lost at flush", () => {
  const { io, writes } = recordingIo();
  const out = new LineBuffer(io);
  const lines = Array.from({ length: 20_000 }, (_, i) => `folder/file-${i}.txt`);
  for (const line of lines) out.push(line);
  const before = writes.length;
  out.flush();
  assert.equal(writes.length, before + 1, "flush writes the rest");
  // 20,000 lines of about 22 characters: 7 blocks, not 20,000 writes.
  assert.ok(writes.length <= 8, `${writes.length} writes`);
  for (const block of writes.slice(0, -1)) assert.ok(block.length >= 64 << 10);
  // CliIo.stdout ends each block with a newline: the lines come back whole, in order.
  assert.deepEqual(writes.join("\n").split("\n"), lines);
  out.flush();
  assert.equal(writes.length, before + 1, "a flush with nothing held writes nothing");
});

Deno.test("LineBuffer passes on the error of a closed output", () => {
  const io: CliIo = {
    stdout: () => {
      throw new Error("closed");
    },
    stderr: () => {},
    writeBytes: () => Promise.resolve(),
    isTerminal: false,
  };
  const out = new LineBuffer(io, 10);
  out.push("short");
  assert.throws(() => out.push("a line past the limit"), /closed/);
});
