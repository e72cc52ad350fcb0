import assert from "node:assert/strict";
import { containerInfo, ContainerReader, ContainerWriter } from "../mod.ts";
import { withTempDir } from "./_helpers.ts";

async function sample(path: string, options: { compress?: boolean } = {}): Promise<void> {
  const writer = await ContainerWriter.open(path, options);
  await writer.addFile(
    { relpath: "a.txt", mode: 0o644 },
    new TextEncoder().encode("a".repeat(1000)),
  );
  await writer.addFile({ relpath: "b.txt" }, new TextEncoder().encode("bb"));
  await writer.addFolder({ relpath: "empty" });
  await writer.addSymlink({ relpath: "link" }, "a.txt");
  await writer.close();
}

Deno.test("containerInfo counts entries by kind and sums original and stored bytes", async () => {
  await withTempDir(async (dir) => {
    const c = `${dir}/c.ctnr`;
    await sample(c, { compress: true });
    const reader = await ContainerReader.open(c);
    try {
      const info = await containerInfo(reader);
      assert.equal(info.entries, 4);
      assert.equal(info.files, 2);
      assert.equal(info.folders, 1);
      assert.equal(info.links, 1);
      assert.equal(info.compressedFiles, 2);
      assert.equal(info.origBytes, 1002);
      assert.equal(info.storedBytes, info.containerBytes, "no trailer: payloads fill the file");
      assert.ok(info.storedBytes < 1002);
      assert.equal(info.payloadEnd, info.containerBytes);
      assert.equal(info.trailer, null);
      assert.deepEqual(info.index, {
        origin: "sibling",
        path: `${c}.idx`,
        bytes: (await Deno.stat(`${c}.idx`)).size,
      });
      assert.deepEqual(
        info.siblingIndex,
        info.index && { path: `${c}.idx`, bytes: info.index.bytes },
      );
    } finally {
      reader.close();
    }
  });
});

Deno.test("ContainerReader.findTrailer finds the trailer an external index leaves unread", async () => {
  await withTempDir(async (dir) => {
    const c = `${dir}/c.ctnr`;
    await sample(c);
    const writer = await ContainerWriter.open(c);
    await writer.finalize();
    await Deno.rename(`${c}.idx`, `${dir}/x.idx`);
    const byTrailer = await ContainerReader.open(c);
    const external = await ContainerReader.open(c, { index: `${dir}/x.idx` });
    try {
      assert.notEqual(byTrailer.trailer, null);
      assert.equal(external.trailer, null, "not looked for at open: the index is used alone");
      assert.deepEqual(await external.findTrailer(), byTrailer.trailer);
      const info = await containerInfo(external);
      assert.deepEqual(info.trailer, byTrailer.trailer);
      assert.equal(info.index.origin, "external");
      assert.equal(info.siblingIndex, null);
      // Once a pass has ended, the scan starts where the indexed payloads end.
      assert.equal(external.indexedEnd, byTrailer.trailer!.trailerOffset);
    } finally {
      byTrailer.close();
      external.close();
    }
  });
});

Deno.test("ContainerReader.findTrailer is null for a container not finalized", async () => {
  await withTempDir(async (dir) => {
    const c = `${dir}/c.ctnr`;
    await sample(c);
    const reader = await ContainerReader.open(c);
    try {
      assert.equal(reader.indexedEnd, undefined, "no pass yet");
      assert.equal(await reader.findTrailer(), null);
    } finally {
      reader.close();
    }
  });
});
