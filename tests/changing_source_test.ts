/**
 * Source files that change, grow or turn into something else while
 * `create` reads them: never a payload that disagrees with its entry, never
 * a read that waits for ever, and what the README promises (read again up
 * to three times, then reported).
 *
 * @module
 */

import assert from "node:assert/strict";
import { ContainerReader, ContainerWriter, SourceError } from "../mod.ts";
import { checkOptions } from "../lib/create/options.ts";
import {
  type OpenSource,
  openSource,
  READ_TRIES,
  type SourceHandle,
  streamSourceFile,
} from "../lib/create/stream_source.ts";
import { readSourceFile } from "../lib/create/_source_file.ts";
import { pseudoRandomBytes, runCli, runCommand, withTempDir } from "./_helpers.ts";
import { PROJECT } from "./_crash.ts";

const SIZE = 600 << 10; // past the small-file limit: streamed

/** A real file opened through {@link openSource}, its fstat altered by `alter` (per open). */
function alteredOpen(
  alter: (open: number, stat: Awaited<ReturnType<SourceHandle["stat"]>>, final: boolean) => void,
): { open: OpenSource; opens: () => number; bytesRead: () => number[] } {
  let opens = 0;
  const reads: number[] = [];
  const open: OpenSource = async (path) => {
    const handle = await openSource(path);
    const index = opens++;
    reads.push(0);
    let stats = 0;
    return {
      stat: async () => {
        const stat = await handle.stat();
        alter(index, stat, stats++ > 0);
        return stat;
      },
      read: async (into) => {
        const n = await handle.read(into);
        reads[index]! += n;
        return n;
      },
      close: () => handle.close(),
    };
  };
  return { open, opens: () => opens, bytesRead: () => reads };
}

async function stream(dir: string, bytes: Uint8Array, open: OpenSource, compress = false) {
  await Deno.writeFile(`${dir}/big.bin`, bytes);
  const writer = await ContainerWriter.open(`${dir}/c.ctnr`, { compress });
  const settings = checkOptions(`${dir}/c.ctnr`, { compress });
  try {
    return await streamSourceFile(
      writer,
      { relpath: "big.bin", path: `${dir}/big.bin`, kind: "file" },
      settings,
      { open },
    );
  } finally {
    await writer.close();
  }
}

async function payloadEnd(dir: string): Promise<number> {
  return (await Deno.stat(`${dir}/c.ctnr`)).size;
}

for (const compress of [false, true]) {
  Deno.test(`a large file that changed while streamed is read again and stored as it is now (compress ${compress})`, async () => {
    await withTempDir(async (dir) => {
      const bytes = pseudoRandomBytes(SIZE, 7);
      // The first read ends with an fstat that says the file shrank.
      const fake = alteredOpen((open, stat, final) => {
        if (open === 0 && final) stat.size -= 1000;
      });
      const entry = await stream(dir, bytes, fake.open, compress);
      assert.equal(fake.opens(), 2);
      assert.equal(entry.origSize, SIZE);
      assert.equal(entry.offset, 0, "the first read's bytes were taken back");
      assert.equal(await payloadEnd(dir), entry.payloadSize);
      const reader = await ContainerReader.open(`${dir}/c.ctnr`);
      try {
        const [only] = await Array.fromAsync(reader.entries());
        assert.deepEqual(await new Response(reader.open(only!)).bytes(), bytes);
      } finally {
        reader.close();
      }
    });
  });
}

Deno.test("a large file that changes on every read is refused after three reads, leaving no bytes", async () => {
  await withTempDir(async (dir) => {
    const fake = alteredOpen((_open, stat, final) => {
      if (final) stat.mtimeMs += 1;
    });
    await assert.rejects(
      stream(dir, pseudoRandomBytes(SIZE, 8), fake.open),
      (error: unknown) => {
        assert.ok(error instanceof SourceError, String(error));
        assert.match(
          error.message,
          /^Cannot read "big\.bin": it changed while being read \(3 tries; the last: .*mtime changed\)$/,
        );
        return true;
      },
    );
    assert.equal(fake.opens(), READ_TRIES);
    assert.equal(await payloadEnd(dir), 0, "no payload without an entry");
  });
});

Deno.test("a file that keeps growing is read only to one byte past its size at open", async () => {
  await withTempDir(async (dir) => {
    // fstat at open says the file is 100 KiB smaller than it is: as if it grew since.
    const fake = alteredOpen((_open, stat, final) => {
      if (!final) stat.size -= 100 << 10;
    });
    await assert.rejects(stream(dir, pseudoRandomBytes(SIZE, 9), fake.open), SourceError);
    assert.deepEqual(fake.bytesRead(), [0, 1, 2].map(() => SIZE - (100 << 10) + 1));
    assert.equal(await payloadEnd(dir), 0);
  });
});

Deno.test({
  name: "a large file swapped for a FIFO after the walk is refused by name, not stored empty",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await withTempDir(async (dir) => {
      const made = await runCommand("mkfifo", [`${dir}/fifo`], { timeoutMs: 10_000 });
      assert.equal(made.code, 0);
      const writer = await ContainerWriter.open(`${dir}/c.ctnr`);
      try {
        await assert.rejects(
          streamSourceFile(
            writer,
            { relpath: "was-a-file", path: `${dir}/fifo`, kind: "file" },
            checkOptions(`${dir}/c.ctnr`, {}),
          ),
          /^SourceError: Cannot read "was-a-file": it is no longer a regular file$/,
        );
      } finally {
        await writer.close();
      }
      assert.equal(await payloadEnd(dir), 0);
    });
  },
});

Deno.test({
  name: "a small file whose size fstat cannot tell (/proc) is read three times, then reported",
  ignore: Deno.build.os !== "linux",
  fn: () => {
    // /proc files say size 0 and hold bytes: every read sees a file that grew.
    const read = readSourceFile("/proc/self/status");
    assert.deepEqual(read, { kind: "error", message: "it changed while being read (3 tries)" });
  },
});

Deno.test({
  name: "a source path that became a FIFO or a link is never waited on nor followed",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    await withTempDir(async (dir) => {
      const made = await runCommand("mkfifo", [`${dir}/fifo`], { timeoutMs: 10_000 });
      assert.equal(made.code, 0);
      await Deno.writeTextFile(`${dir}/target`, "secret");
      await Deno.symlink(`${dir}/target`, `${dir}/link`);
      // In a child process with a time limit: a blocking open would hang this test for ever.
      const script = `
        import { openSync, closeSync } from "node:fs";
        import { NONBLOCKING_READ, readSourceFile } from "./lib/create/_source_file.ts";
        import { openSource } from "./lib/create/stream_source.ts";
        const out = {};
        const fd = openSync(${JSON.stringify(`${dir}/fifo`)}, NONBLOCKING_READ);
        closeSync(fd);
        out.fifoOpened = true;
        out.smallFifo = readSourceFile(${JSON.stringify(`${dir}/fifo`)}).kind;
        out.smallLink = readSourceFile(${JSON.stringify(`${dir}/link`)}).kind;
        const handle = await openSource(${JSON.stringify(`${dir}/fifo`)});
        out.largeFifoIsFile = (await handle.stat()).isFile;
        await handle.close();
        try { await openSource(${JSON.stringify(`${dir}/link`)}); out.largeLink = "opened"; }
        catch (error) { out.largeLink = error.code; }
        console.log(JSON.stringify(out));
      `;
      const run = await runCommand(Deno.execPath(), ["eval", "--ext=ts", script], {
        timeoutMs: 15_000,
        cwd: PROJECT,
      });
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(JSON.parse(run.stdout), {
        fifoOpened: true,
        smallFifo: "special",
        smallLink: "special",
        largeFifoIsFile: false,
        largeLink: "ELOOP",
      });
    });
  },
});

Deno.test("main create while another process appends to a large file: the file is reported or stored whole, and the container verifies", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/src`);
    await Deno.writeFile(`${dir}/src/app.log`, pseudoRandomBytes(4 << 20, 10));
    await Deno.writeTextFile(`${dir}/src/other.txt`, "other");
    const appender = new Deno.Command("python3", {
      args: [
        "-c",
        `
import sys, time
end = time.time() + 20
with open(sys.argv[1], "ab", buffering=0) as f:
    while time.time() < end:
        f.write(b"x" * 64)
`,
        `${dir}/src/app.log`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const run = await runCli("create", "--src", `${dir}/src`, "--container", `${dir}/c.ctnr`);
      if (run.code === 3) {
        assert.match(run.stderr, /"app\.log": it changed while being read \(3 tries/);
      } else assert.equal(run.code, 0, run.stderr);
      const verify = await runCli("verify", "--container", `${dir}/c.ctnr`);
      assert.equal(verify.code, 0, verify.stderr);
      const list = await runCli("list", "--container", `${dir}/c.ctnr`);
      assert.match(list.stdout, /other\.txt/);
    } finally {
      appender.kill();
      await appender.status;
    }
  });
});
