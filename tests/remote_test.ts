/**
 * Reading containers over HTTP from a real nginx (issue 15, "Done means"): remote output equals
 * local output for list, list -l, list --json, info --json, cat, verify and extract; request
 * accounting from the fault proxy's log; the index cache. Faults: remote_faults_test.ts.
 */

import assert from "node:assert/strict";
import { nginxAvailable } from "./_servers.ts";
import { type FaultProxy, proxying, type RecordedRequest } from "./_fault_proxy.ts";
import { type CliRun, diffTrees, exists, withEnv } from "./_helpers.ts";
import { ContainerWriter } from "../mod.ts";
import { buildMany, buildSmall, copyPeerFixtures, ctnr, tempFiles, withServed } from "./_remote.ts";

const ignore = !nginxAvailable();

/** Text without the `[date time] ` stamps of verify's and extract's lines. */
function stamped(text: string): string {
  return text.replace(/^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] /gm, "[stamp] ");
}

/** One command on the local file and on its URL: the same stdout, exit code and stderr. */
async function same(
  cache: string,
  dir: string,
  url: string,
  file: string,
  command: string[],
  tail: string[] = [],
  index?: string,
): Promise<number> {
  const run = (base: string) => ctnr(cache, ...command, ...target(base, file, index), ...tail);
  const local = await run(dir);
  const remote = await run(url);
  const what = `${command.join(" ")} ${file} ${tail.join(" ")}`;
  assert.equal(remote.code, local.code, `${what}: exit code (${remote.stderr})`);
  if (command.includes("--json") && command[0] === "info") {
    const drop = (text: string) => {
      const value = JSON.parse(text);
      // Names and places differ by design; the rest must not.
      for (const key of ["container", "index_path", "sibling_index", "duration_s", "remote"]) {
        delete value[key];
      }
      return value;
    };
    assert.deepEqual(drop(remote.stdout), drop(local.stdout), what);
  } else {
    assert.equal(stamped(remote.stdout), stamped(local.stdout), `${what}: stdout`);
  }
  assert.equal(remote.stderr.replaceAll(`${url}/`, `${dir}/`), local.stderr, `${what}: stderr`);
  return local.code;
}

/** `base/file` on a command line, after `--index base/index` when there is an index. */
function target(base: string, file: string, index: string | undefined): string[] {
  return [...(index === undefined ? [] : ["--index", `${base}/${index}`]), `${base}/${file}`];
}

/** Every reading command, local against remote, extract compared as trees. */
async function sameEverywhere(
  root: string,
  url: string,
  file: string,
  options: { pattern: string; cat: string; index?: string; mtimes?: boolean; extract?: string[] },
): Promise<void> {
  const cache = `${root}/cache`;
  const dir = `${root}/served`;
  const index = options.index;
  for (const command of [["list"], ["list", "-l"], ["list", "--json"], ["info", "--json"]]) {
    assert.equal(await same(cache, dir, url, file, command, [], index), 0, command.join(" "));
  }
  assert.equal(await same(cache, dir, url, file, ["cat"], [options.cat], index), 0);
  assert.equal(await same(cache, dir, url, file, ["cat"], [options.pattern], index), 0);
  assert.equal(await same(cache, dir, url, file, ["verify"], [], index), 0);
  assert.equal(await same(cache, dir, url, file, ["cat"], ["no-such-name*"], index), 1);
  const out = (side: string) => `${root}/out-${side}-${file}`;
  const extract = (base: string, side: string) =>
    ctnr(cache, "extract", ...target(base, file, index), out(side), ...(options.extract ?? []));
  const local = await extract(dir, "local");
  const remote = await extract(url, "remote");
  assert.equal(local.code, 0, local.stderr);
  assert.equal(remote.code, 0, remote.stderr);
  assert.equal(
    stamped(remote.stdout.replaceAll(`${url}/`, `${dir}/`)),
    stamped(local.stdout.replaceAll(out("local"), out("remote"))),
  );
  // The original tools record no mtime: both sides then stamp the time of extraction.
  const mtimes = options.mtimes ?? true;
  assert.deepEqual(await diffTrees(out("local"), out("remote"), { mtimes }), [], "extracted trees");
  assert.deepEqual(await tempFiles(out("remote")), []);
  assert.deepEqual(await tempFiles(cache), []);
}

Deno.test({
  name: "remote: a small, a --compress and the original tools' containers read the same as local",
  ignore,
  fn: () =>
    withServed(async (served) => {
      await buildSmall(`${served}/small.ctnr`);
      await buildSmall(`${served}/gz.ctnr`, true);
      await copyPeerFixtures(served);
    }, async (root, nginx) => {
      await sameEverywhere(root, nginx.url, "small.ctnr", { pattern: "*.md", cat: "run.sh" });
      await sameEverywhere(root, nginx.url, "gz.ctnr", { pattern: "docs", cat: "data/big.bin" });
      // No footer: the original tools' trailer, plain and gzip payloads.
      await sameEverywhere(root, nginx.url, "plain.ctnr", {
        pattern: "*.md",
        cat: "hello.txt",
        mtimes: false,
      });
      await sameEverywhere(root, nginx.url, "gzip.ctnr", {
        pattern: "*.md",
        cat: "hello.txt",
        mtimes: false,
      });
      // An external index read by URL, served beside the container.
      await sameEverywhere(root, nginx.url, "external.ctnr", {
        pattern: "*.md",
        cat: "hello.txt",
        index: "external.ctnr.idx",
        mtimes: false,
      });
    }),
});

Deno.test({
  name: "remote: a 100,000-entry container reads the same as local",
  ignore,
  fn: () =>
    withServed((served) => buildMany(`${served}/many.ctnr`, 100_000), async (root, nginx) => {
      await sameEverywhere(root, nginx.url, "many.ctnr", {
        pattern: "d42",
        cat: "d99/f999.txt",
        // 100,000 files written twice would take a minute: two folders of them.
        extract: ["d0", "d99"],
      });
    }),
});

/** The requests of one run through the proxy, checked: GET only, one range each, If-Match. */
function checkRequests(requests: RecordedRequest[], etag: string, what: string): void {
  requests.forEach((request, i) => {
    assert.equal(request.method, "GET", `${what}: request ${i + 1} is a ${request.method}`);
    const range = request.headers.get("range") ?? "";
    assert.match(range, /^bytes=\d*-\d*$/, `${what}: request ${i + 1} Range "${range}"`);
    assert.ok(!range.includes(","), `${what}: multi-range ${range}`);
    if (i > 0) assert.equal(request.headers.get("if-match"), etag, `${what}: request ${i + 1}`);
  });
}

/** Run through `proxy`: the run and the requests it sent. */
async function counted(
  proxy: FaultProxy,
  cache: string,
  ...args: string[]
): Promise<{ run: CliRun; requests: RecordedRequest[] }> {
  const before = proxy.count;
  const run = await ctnr(cache, ...args);
  return { run, requests: proxy.requests.slice(before) };
}

async function etagOf(url: string): Promise<string> {
  const response = await fetch(url, { headers: { range: "bytes=0-0" } });
  await response.body?.cancel();
  return response.headers.get("etag")!;
}

Deno.test({
  name:
    "remote: a cold list of a 20 MB index costs at most 1 + ceil(index bytes / 8 MiB) requests, --max-range or not",
  ignore,
  fn: () =>
    withServed(
      (served) => buildMany(`${served}/many.ctnr`, 100_000),
      (root, nginx) =>
        proxying(nginx.url, [], async (proxy) => {
          const url = `${proxy.url}/many.ctnr`;
          const etag = await etagOf(`${nginx.url}/many.ctnr`);
          const info = JSON.parse((await ctnr(`${root}/c0`, "info", "--json", url)).stdout);
          const indexBytes = info.index_bytes as number;
          assert.ok(indexBytes > 8 << 20, `index of ${indexBytes} bytes`);
          const most = 1 + Math.ceil(indexBytes / (8 << 20));
          for (const flags of [[], ["--max-range", "65536"], ["--connections", "1"]]) {
            const cache = `${root}/cache-${flags.join("")}`;
            const { run, requests } = await counted(proxy, cache, "list", ...flags, url);
            assert.equal(run.code, 0, run.stderr);
            assert.equal(run.stdout.split("\n").length - 1, 100_000);
            assert.ok(
              requests.length <= most,
              `list ${
                flags.join(" ")
              }: ${requests.length} requests, at most ${most} (index ${indexBytes} bytes at ${info.trailer.index_offset}): ${
                requests.map((r) => r.headers.get("range")).join(" ")
              }`,
            );
            checkRequests(requests, etag, `cold list ${flags.join(" ")}`);
            assert.deepEqual(await tempFiles(cache), []);
          }
        }),
    ),
});

Deno.test({
  name:
    "remote: a warm cat is one request with If-Match; never a HEAD or a multi-range; the cache is renamed into place",
  ignore,
  fn: () =>
    withServed(
      (served) => buildSmall(`${served}/small.ctnr`),
      (root, nginx) =>
        proxying(nginx.url, [], async (proxy) => {
          const url = `${proxy.url}/small.ctnr`;
          const etag = await etagOf(`${nginx.url}/small.ctnr`);
          const cache = `${root}/cache`;
          const cold = await counted(proxy, cache, "cat", url, "docs/a.md");
          assert.equal(cold.run.stdout, "alpha\n");
          assert.ok(cold.requests.length >= 1);
          checkRequests(cold.requests, etag, "cold cat");
          const entries = await Array.fromAsync(
            Deno.readDir(`${cache}/${new URL(url).host.replace(":", "_")}`),
          );
          assert.equal(entries.length, 1);
          assert.match(entries[0]!.name, /^[0-9a-f]{64}\.ctnr-index$/);
          assert.deepEqual(await tempFiles(cache), []);
          const warm = await counted(proxy, cache, "cat", "-v", url, "run.sh");
          assert.equal(warm.run.code, 0, warm.run.stderr);
          assert.equal(warm.run.stdout, "#!/bin/sh\necho hi\n");
          assert.equal(warm.requests.length, 1, "a warm cat is one request");
          assert.equal(warm.requests[0]!.headers.get("if-match"), etag);
          assert.match(warm.run.stderr, /Remote: 1 request, /);
          for (const command of [["list", "-l"], ["verify"], ["info"]]) {
            const warmRun = await counted(proxy, cache, ...command, url);
            assert.equal(warmRun.run.code, 0, warmRun.run.stderr);
            checkRequests(warmRun.requests, etag, `warm ${command[0]}`);
          }
          const out = await counted(proxy, cache, "extract", url, `${root}/out`);
          assert.equal(out.run.code, 0, out.run.stderr);
          checkRequests(out.requests, etag, "warm extract");
          // A payload longer than --max-range, one connection: each byte fetched once, in
          // requests of at most --max-range (it was fetched whole a second time, unplanned).
          for (const connections of ["1", "3"]) {
            const narrow = await counted(
              proxy,
              cache,
              "extract",
              "--json",
              "--connections",
              connections,
              "--max-range",
              "4096",
              url,
              `${root}/out-${connections}`,
              "data",
            );
            assert.equal(narrow.run.code, 0, narrow.run.stderr);
            checkRequests(narrow.requests, etag, `extract --connections ${connections}`);
            const remote = JSON.parse(narrow.run.stdout).remote;
            assert.ok(remote.bytes_received <= 300_000 + 1, JSON.stringify(remote));
            for (const request of narrow.requests) {
              const [from, to] = request.headers.get("range")!.slice(6).split("-").map(Number);
              assert.ok(to! - from! + 1 <= 4096, request.headers.get("range")!);
            }
          }
          assert.ok(proxy.requests.every((r) => r.method === "GET"));
        }),
    ),
});

Deno.test({
  name:
    "remote: a container replaced after its index was cached is read again: the new content, exit 0",
  ignore,
  fn: () =>
    withServed((served) => buildSmall(`${served}/small.ctnr`), async (root, nginx) => {
      const url = `${nginx.url}/small.ctnr`;
      const cache = `${root}/cache`;
      assert.equal((await ctnr(cache, "cat", url, "docs/a.md")).stdout, "alpha\n");
      const writer = await ContainerWriter.open(`${root}/next.ctnr`);
      await writer.addFile(
        { relpath: "docs/a.md", mtime: 0 },
        new TextEncoder().encode("NEW a\n"),
      );
      await writer.addFile({ relpath: "extra.txt", mtime: 0 }, new TextEncoder().encode("x"));
      await writer.finalize({ removeIndex: true });
      await Deno.rename(`${root}/next.ctnr`, `${root}/served/small.ctnr`);
      const cat = await ctnr(cache, "cat", url, "docs/a.md");
      assert.equal(cat.code, 0, cat.stderr);
      assert.equal(cat.stdout, "NEW a\n");
      const list = await ctnr(cache, "list", url);
      assert.equal(list.code, 0, list.stderr);
      assert.equal(list.stdout, "docs/a.md\nextra.txt\n");
      assert.deepEqual(await tempFiles(cache), []);
    }),
});

Deno.test({
  name: "remote: --no-cache leaves no cache folder and no temp folder behind",
  ignore,
  fn: () =>
    withServed((served) => buildSmall(`${served}/small.ctnr`), async (root, nginx) => {
      const url = `${nginx.url}/small.ctnr`;
      await Deno.mkdir(`${root}/tmp`);
      await withEnv({ TMPDIR: `${root}/tmp` }, async () => {
        for (
          const args of [
            ["cat", "--no-cache", url, "docs/a.md"],
            ["list", "--no-cache", url],
            ["verify", "--no-cache", url],
          ]
        ) {
          const run = await ctnr(`${root}/cache`, ...args);
          assert.equal(run.code, 0, run.stderr);
        }
        const index = await ctnr(
          `${root}/cache`,
          "list",
          "--no-cache",
          "--index",
          `${url}.idx`,
          url,
        );
        assert.equal(index.code, 1); // no such index object: the 404 named
        assert.match(index.stderr, /small\.ctnr\.idx.*no such object/);
      });
      assert.equal(await exists(`${root}/cache`), false, "a cache folder was made");
      assert.deepEqual(await Array.fromAsync(Deno.readDir(`${root}/tmp`)), []);
    }),
});

Deno.test({
  name:
    "remote: a container whose index is past the last 64 MiB (ctnr's footer names it) is read, in 8 MiB requests",
  ignore,
  fn: () =>
    withServed(async (served) => {
      // 24,000 entries of 3,000-byte names: an index of about 75 MB.
      const writer = await ContainerWriter.open(`${served}/long.ctnr`, { pathsUnique: true });
      const deep = Array.from({ length: 14 }, (_, i) => `${i}`.padEnd(200, "x")).join("/");
      for (let i = 0; i < 24_000; i++) {
        await writer.addFile({ relpath: `${deep}/f${i}`, mtime: 0 }, new Uint8Array(1));
      }
      await writer.finalize({ removeIndex: true });
    }, (root, nginx) =>
      proxying(nginx.url, [], async (proxy) => {
        const { run, requests } = await counted(
          proxy,
          `${root}/cache`,
          "cat",
          `${proxy.url}/long.ctnr`,
          "f23999",
        );
        assert.equal(run.code, 0, run.stderr);
        assert.equal(run.stdout, "\0");
        const info = JSON.parse(
          (await ctnr(`${root}/cache`, "info", "--json", `${root}/served/long.ctnr`)).stdout,
        );
        assert.ok(info.index_bytes > 64 << 20, `${info.index_bytes}`);
        // The open, the index in 8 MiB requests, the payload.
        assert.ok(
          requests.length <= 2 + Math.ceil(info.index_bytes / (8 << 20)),
          `${requests.length}`,
        );
      })),
});
