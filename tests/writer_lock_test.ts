/**
 * One writer at a time: two `create` runs on one container at once (an
 * overlapping cron job) used to both append, and the index then named
 * entries twice. The second run must fail at once, exit 4, and touch nothing.
 *
 * @module
 */

import assert from "node:assert/strict";
import { BusyError, ContainerWriter } from "../mod.ts";
import { exists, runCli, withTempDir } from "./_helpers.ts";
import { readEntries, runProcess, withScratchDir } from "./_crash.ts";

Deno.test("main create refuses a second writer of one container with exit 4, touching nothing", async () => {
  await withScratchDir(async (dir) => {
    const src = `${dir}/src`;
    for (let d = 0; d < 20; d++) {
      await Deno.mkdir(`${src}/d${d}`, { recursive: true });
      for (let f = 0; f < 1000; f++) Deno.writeFileSync(`${src}/d${d}/f${f}`, new Uint8Array(2048));
    }
    const container = `${dir}/c.ctnr`;
    const args = ["create", "--src", src, "--container", container, "--fsync-every", "10"];
    const first = runProcess(args);
    // Once the first run has written payloads, it holds the lock.
    const started = performance.now();
    while ((await Deno.stat(container).then((i) => i.size, () => 0)) === 0) {
      assert.ok(performance.now() - started < 30_000, "the first run never started writing");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    for (const more of [[], ["--finalize"]]) {
      const second = await runProcess([...args, ...more]);
      assert.equal(second.code, 4, `${more}: ${second.stderr}`);
      assert.match(second.stderr, /another ctnr run is writing it/);
      assert.equal(second.stderr.trim().split("\n").length, 1, "one line, no stack trace");
    }
    const finalizeOnly = await runProcess(["create", "--container", container, "--finalize-only"]);
    assert.equal(finalizeOnly.code, 4, finalizeOnly.stderr);
    const run = await first;
    assert.equal(run.code, 0, run.stderr);
    const entries = await readEntries(container);
    assert.equal(entries.length, 20_000);
    assert.equal(new Set(entries.map((e) => e.relpath)).size, 20_000, "no relpath twice");
    const verify = await runCli("verify", "--container", container);
    assert.equal(verify.code, 0, verify.stderr);
  });
});

Deno.test("ContainerWriter.open throws BusyError while another writer holds the container", async () => {
  await withTempDir(async (dir) => {
    const first = await ContainerWriter.open(`${dir}/c.ctnr`);
    await first.addFile({ relpath: "a" }, new TextEncoder().encode("a"));
    // A lock taken through another open file of the same process counts as another writer's.
    await assert.rejects(ContainerWriter.open(`${dir}/c.ctnr`), BusyError);
    // The container is locked, not only its index: another index does not get around it.
    await assert.rejects(
      ContainerWriter.open(`${dir}/c.ctnr`, { index: `${dir}/other.idx` }),
      BusyError,
    );
    assert.equal(await exists(`${dir}/other.idx`), false, "touched nothing");
    await first.close();
    const second = await ContainerWriter.open(`${dir}/c.ctnr`);
    assert.equal(second.entries, 1);
    await second.close();
  });
});

Deno.test("ContainerWriter.open refuses an index that names a relpath twice, as two runs at once left it", async () => {
  await withTempDir(async (dir) => {
    const writer = await ContainerWriter.open(`${dir}/c.ctnr`);
    await writer.addFile({ relpath: "a" }, new TextEncoder().encode("a"));
    await writer.addFile({ relpath: "b" }, new TextEncoder().encode("b"));
    await writer.close();
    const index = await Deno.readTextFile(`${dir}/c.ctnr.idx`);
    await Deno.writeTextFile(`${dir}/c.ctnr.idx`, index + index.split("\n")[0] + "\n");
    await assert.rejects(
      ContainerWriter.open(`${dir}/c.ctnr`),
      /line 3, "a": another entry has the same path/,
    );
    const cli = await runCli("create", "--container", `${dir}/c.ctnr`, "--finalize-only");
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stderr, /Cannot finalize .*line 3 of its index, "a"/);
  });
});
