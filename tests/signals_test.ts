/**
 * Every command ends promptly on a signal: `list` and `cat` even while
 * blocked writing into a pipe nobody reads, `create` and `extract` even in
 * the middle of a file of many GiB, leaving no bytes of it behind.
 *
 * @module
 */

import assert from "node:assert/strict";
import { ContainerWriter, createContainer, extractContainer, InterruptedError } from "../mod.ts";
import { listPaths, pseudoRandomBytes, withTempDir, writeTree } from "./_helpers.ts";
import { CLI, PROJECT } from "./_crash.ts";

/** Run the CLI with its stdout a pipe nobody reads; send `signal` after `afterMs`. */
async function blockedOnStdout(
  args: string[],
  signal: Deno.Signal,
  afterMs: number,
): Promise<{ status: Deno.CommandStatus; msAfterSignal: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: PROJECT,
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const watchdog = setTimeout(() => child.kill("SIGKILL"), afterMs + 10_000);
  try {
    await new Promise((resolve) => setTimeout(resolve, afterMs));
    const sent = performance.now();
    child.kill(signal);
    const status = await child.status;
    return { status, msAfterSignal: performance.now() - sent };
  } finally {
    clearTimeout(watchdog);
    await child.stdout.cancel();
  }
}

Deno.test("main list and cat blocked on a pipe nobody reads end at once on SIGTERM and SIGINT", async () => {
  await withTempDir(async (dir) => {
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`);
    for (let i = 0; i < 20_000; i++) {
      await writer.addFile({ relpath: `folder/file-${i}.txt` }, new Uint8Array());
    }
    await writer.addFile({ relpath: "big.bin" }, pseudoRandomBytes(8 << 20, 1));
    await writer.finalize({ removeIndex: true });
    for (
      const [args, signal] of [
        [["list", `${dir}/c.ctnr`], "SIGTERM"],
        [["cat", `${dir}/c.ctnr`, "big.bin"], "SIGINT"],
      ] as const
    ) {
      // 1.5 s: Deno starts, the output fills the pipe's 64 KiB, and the write blocks.
      const { status, msAfterSignal } = await blockedOnStdout([...args], signal, 1500);
      assert.equal(status.signal, signal, `${args[0]}: ${JSON.stringify(status)}`);
      assert.equal(status.code, signal === "SIGTERM" ? 143 : 130);
      assert.ok(msAfterSignal < 2000, `${args[0]} took ${Math.round(msAfterSignal)} ms`);
    }
  });
});

Deno.test("createContainer stops inside a large file when its signal is aborted, taking its bytes back", async () => {
  await withTempDir(async (dir) => {
    // 64 MiB gzipped at about 40 MB/s: over a second of work in one file.
    await writeTree(`${dir}/src`, { "big.bin": pseudoRandomBytes(64 << 20, 2) });
    const controller = new AbortController();
    const container = `${dir}/c.ctnr`;
    const poll = setInterval(() => {
      // Abort once the file's payload has started.
      Deno.stat(container).then((info) => {
        if (info.size > 1 << 20) controller.abort("SIGTERM");
      }).catch(() => {});
    }, 2);
    try {
      await assert.rejects(
        createContainer(`${dir}/src`, container, { compress: true, signal: controller.signal }),
        (error: unknown) => error instanceof InterruptedError && error.exitCode === 143,
      );
    } finally {
      clearInterval(poll);
    }
    assert.ok(controller.signal.aborted);
    assert.equal((await Deno.stat(container)).size, 0, "the file's bytes were taken back");
    assert.equal((await Deno.stat(`${container}.idx`)).size, 0);
  });
});

Deno.test("extractContainer stops inside a large file when its signal is aborted, leaving no temp file", async () => {
  await withTempDir(async (dir) => {
    await writeTree(`${dir}/src`, { "big.bin": pseudoRandomBytes(128 << 20, 3) });
    await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
    const out = `${dir}/out`;
    const controller = new AbortController();
    // Abort once the file's temp file is there: the copy (128 pieces of 1 MiB) must stop
    // before its next piece.
    const poll = setInterval(() => {
      try {
        for (const entry of Deno.readDirSync(out)) {
          if (entry.name.startsWith(".ctnr-tmp")) controller.abort("SIGTERM");
        }
      } catch { /* not made yet */ }
    }, 1);
    try {
      await assert.rejects(
        extractContainer(`${dir}/c.ctnr`, out, { signal: controller.signal, chunkSize: 1 << 20 }),
        (error: unknown) => error instanceof InterruptedError && error.exitCode === 143,
      );
    } finally {
      clearInterval(poll);
    }
    assert.deepEqual(await listPaths(out), [], "neither the file nor its temp file is left");
  });
});
