/**
 * Request accounting of opening a container on a server (loopback nginx): an embedded index
 * larger than the tail read at open costs 1 + ceil(index bytes / 8 MiB) requests, its 16-byte
 * trailer header fetched with the index, not alone.
 */

import assert from "node:assert/strict";
import { ContainerReader, createContainer, extractContainer } from "../mod.ts";
import { remoteStats } from "../lib/remote/http_source.ts";
import { nginxAvailable, serving } from "./_servers.ts";
import { pseudoRandomBytes, withTempDir } from "./_helpers.ts";

Deno.test({
  name: "remote: a cold open of an index past the 1 MiB tail is 1 + ceil(index / 8 MiB) requests",
  ignore: !nginxAvailable(),
  async fn() {
    await withTempDir(async (dir) => {
      const src = `${dir}/src`;
      const entries = 12_000; // about 2.4 MB of index: past the 1 MiB tail, within one 8 MiB range
      for (let d = 0; d * 1000 < entries; d++) {
        await Deno.mkdir(`${src}/d${d}`, { recursive: true });
        for (let f = 0; f < 1000; f++) {
          await Deno.writeTextFile(`${src}/d${d}/f${f}.txt`, `${d}/${f}`);
        }
      }
      await Deno.mkdir(`${dir}/served`);
      await createContainer(src, `${dir}/served/c.ctnr`, { finalize: true });
      const indexBytes = (await Deno.stat(`${dir}/served/c.ctnr.idx`)).size;
      assert.ok(indexBytes > 1 << 20, `index of ${indexBytes} bytes is past the tail`);
      await serving(`${dir}/served`, async (server) => {
        const stats = remoteStats();
        const reader = await ContainerReader.open(`${server.url}/c.ctnr`, {
          remote: { cacheDir: null, stats },
        });
        try {
          let n = 0;
          for await (const _ of reader.entries()) n++;
          assert.equal(n, entries);
        } finally {
          reader.close();
        }
        assert.equal(stats.requests, 1 + Math.ceil(indexBytes / (8 << 20)));
        assert.equal(stats.retries, 0);
        // 1 MiB ranges over one connection: the index still comes in 8 MiB requests, every
        // byte of it received once.
        const narrow = remoteStats();
        const again = await ContainerReader.open(`${server.url}/c.ctnr`, {
          remote: { cacheDir: null, stats: narrow, maxRange: 1 << 20, connections: 1 },
        });
        again.close();
        const trailerBytes = 16 + indexBytes; // header and index, before the 16-byte footer
        assert.equal(narrow.requests, 1 + Math.ceil(indexBytes / (8 << 20)));
        assert.ok(
          narrow.bytesReceived <= (1 << 20) + trailerBytes,
          `${narrow.bytesReceived} bytes received for a trailer of ${trailerBytes}`,
        );
      });
    });
  },
});

Deno.test({
  name: "remote: extract from a URL writes the bytes of every payload (views into the requests)",
  ignore: !nginxAvailable(),
  async fn() {
    await withTempDir(async (dir) => {
      const src = `${dir}/src`;
      await Deno.mkdir(`${src}/a`, { recursive: true });
      const files = new Map<string, Uint8Array>();
      for (let i = 0; i < 300; i++) {
        // Sizes 0 to ~70 KiB: several payloads a request, some across two requests' boundary.
        const bytes = pseudoRandomBytes((i * 7919) % 70_000, i + 1);
        files.set(`a/f${i}.bin`, bytes);
        await Deno.writeFile(`${src}/a/f${i}.bin`, bytes);
      }
      await Deno.mkdir(`${dir}/served`);
      await createContainer(src, `${dir}/served/c.ctnr`, { finalize: true });
      await serving(`${dir}/served`, async (server) => {
        const stats = remoteStats();
        // 64 KiB ranges, 2 connections: most requests hold several payloads, and many a payload
        // spans two of them.
        const result = await extractContainer(`${server.url}/c.ctnr`, `${dir}/out`, {
          remote: { cacheDir: null, stats, maxRange: 64 << 10, connections: 2 },
        });
        assert.equal(result.failed, 0);
        assert.ok(stats.requests > 100, `${stats.requests} requests`);
        for (const [relpath, bytes] of files) {
          assert.deepEqual(await Deno.readFile(`${dir}/out/${relpath}`), bytes, relpath);
        }
      });
    });
  },
});
