/**
 * The faults an adversarial review of remote reading found (issue 15), each with its input: a
 * warm `cat` that sent no request answered from a stale cached index; a damaged cache entry was
 * trusted; an unusable cache folder failed the command; `--connections` x `--max-range` had no
 * bound; `verify` went on after the container changed; a redirect loop was retried as a network
 * fault; remote-only options were accepted on a local file.
 */

import assert from "node:assert/strict";
import { nginxAvailable, serving } from "./_servers.ts";
import { withTempDir } from "./_helpers.ts";
import { ContainerWriter, extractContainer, RemoteError } from "../mod.ts";
import { ctnr, MTIME, tempFiles } from "./_remote.ts";

const ignore = !nginxAvailable();
const text = new TextEncoder();

/** A finalized container holding `files` (relpath -> text). */
async function build(path: string, files: Record<string, string>): Promise<void> {
  const writer = await ContainerWriter.open(`${path}.part`);
  for (const [relpath, body] of Object.entries(files)) {
    await writer.addFile({ relpath, mode: 0o644, mtime: MTIME }, text.encode(body));
  }
  await writer.finalize({ removeIndex: true });
  await Deno.rename(`${path}.part`, path); // a new inode and mtime: nginx gives a new ETag
}

/** Every cache file under `dir`. */
async function cacheFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const host of Deno.readDir(dir)) {
    for await (const item of Deno.readDir(`${dir}/${host.name}`)) {
      found.push(`${dir}/${host.name}/${item.name}`);
    }
  }
  return found;
}

Deno.test({
  name: "a warm cat of an empty file or of a name the cached index lacks checks the container",
  ignore,
  fn: () =>
    withTempDir((dir) =>
      serving(`${dir}/www`, async (nginx) => {
        const cache = `${dir}/cache`;
        const c = `${dir}/www/c.ctnr`;
        await build(c, { "e.txt": "", "a.txt": "one" });
        const url = `${nginx.url}/c.ctnr`;
        assert.equal((await ctnr(cache, "cat", url, "e.txt")).code, 0); // cold: cached now
        await new Promise((resolve) => setTimeout(resolve, 1100)); // another mtime, another ETag
        await build(c, { "e.txt": "fresh", "new.txt": "new" });
        const empty = await ctnr(cache, "cat", url, "e.txt");
        assert.equal(empty.code, 0, empty.stderr);
        assert.equal(empty.stdout, "fresh"); // was "" from the stale index, exit 0
        const added = await ctnr(cache, "cat", url, "new.txt");
        assert.equal(added.code, 0, added.stderr); // was "matched no file", exit 1
        assert.equal(added.stdout, "new");
      })
    ),
});

Deno.test({
  name: "a cache entry damaged on disk is fetched again, never trusted",
  ignore,
  fn: () =>
    withTempDir((dir) =>
      serving(`${dir}/www`, async (nginx) => {
        const cache = `${dir}/cache`;
        await build(`${dir}/www/c.ctnr`, { "d/f1.txt": "1", "d/f9.txt": "9" });
        const url = `${nginx.url}/c.ctnr`;
        const cold = await ctnr(cache, "list", url);
        assert.equal(cold.stdout, "d/f1.txt\nd/f9.txt\n");
        const [file] = await cacheFiles(cache);
        const bytes = await Deno.readFile(file!);
        const at = new TextDecoder().decode(bytes).lastIndexOf("f9.txt");
        assert.ok(at > 0);
        bytes.set(text.encode("f9.bim"), at); // a renamed entry, same length
        await Deno.writeFile(file!, bytes);
        const warm = await ctnr(cache, "list", "-v", url);
        assert.equal(warm.code, 0, warm.stderr);
        assert.equal(warm.stdout, "d/f1.txt\nd/f9.txt\n"); // was d/f9.bim
        const out = `${dir}/out`;
        assert.equal((await ctnr(cache, "extract", url, out)).code, 0);
        assert.deepEqual([...Deno.readDirSync(`${out}/d`)].map((e) => e.name).sort(), [
          "f1.txt",
          "f9.txt",
        ]);
      })
    ),
});

Deno.test({
  name: "a cache folder that cannot be used is a warning; the command reads without it",
  ignore,
  fn: () =>
    withTempDir((dir) =>
      serving(`${dir}/www`, async (nginx) => {
        await build(`${dir}/www/c.ctnr`, { "a.txt": "alpha" });
        const url = `${nginx.url}/c.ctnr`;
        await Deno.writeTextFile(`${dir}/not-a-folder`, "x"); // the cache path is a file
        for (const command of [["list", url], ["cat", url, "a.txt"], ["verify", url]]) {
          const run = await ctnr(`${dir}/not-a-folder`, ...command);
          assert.equal(run.code, 0, `${command[0]}: ${run.stderr}`);
          assert.match(run.stderr, /warning: Cannot keep the index of .* in the cache/);
        }
        assert.equal((await ctnr(`${dir}/not-a-folder`, "cat", url, "a.txt")).stdout, "alpha");
        assert.equal(await Deno.readTextFile(`${dir}/not-a-folder`), "x");
      })
    ),
});

Deno.test({
  name: "verify stops at a container replaced mid-read, naming it once",
  ignore,
  fn: () =>
    withTempDir((dir) =>
      serving(`${dir}/www`, async (nginx) => {
        const files: Record<string, string> = {};
        for (let i = 0; i < 60; i++) files[`f${String(i).padStart(2, "0")}`] = "x".repeat(40_000);
        await build(`${dir}/www/c.ctnr`, files); // 2.4 MB: payloads past the first request
        let requests = 0;
        // From the third request on, the server says the object changed (412).
        const changing: typeof fetch = (input, init) => {
          requests++;
          if (requests < 3) return fetch(input, init);
          return Promise.resolve(new Response("changed", { status: 412 }));
        };
        const failed: string[] = [];
        const error = await extractContainer(`${nginx.url}/c.ctnr`, `${dir}/out`, {
          dryRun: true,
          keepGoing: true,
          remote: { fetch: changing, cacheDir: null, maxRange: 65536, connections: 1 },
          onEntryError: (entry) => failed.push(entry.relpath),
        }).then(() => undefined, (e) => e);
        assert.ok(error instanceof RemoteError, String(error));
        assert.equal(error.code, "REMOTE_CHANGED");
        assert.ok(failed.length <= 1, `went on after the change: ${failed.join()}`);
        assert.ok(requests < 10, `${requests} requests after the change`);
      })
    ),
});

Deno.test("a redirect loop is the server's fault: exit 1, not retried", async () => {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    () =>
      new Response(null, {
        status: 302,
        headers: { location: `/loop${Math.random()}` },
      }),
  );
  try {
    await withTempDir(async (dir) => {
      const started = Date.now();
      const run = await ctnr(`${dir}/cache`, "list", `http://127.0.0.1:${server.addr.port}/c`);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /redirects/);
      assert.ok(Date.now() - started < 3000, "retried");
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("the options of reading from a server are refused where they change nothing", async () => {
  await withTempDir(async (dir) => {
    await build(`${dir}/c.ctnr`, { "a.txt": "a" });
    const c = `${dir}/c.ctnr`;
    for (
      const args of [
        ["list", c, "--connections", "4"],
        ["verify", c, "--max-range", "65536"],
        ["cat", c, "a.txt", "--no-cache"],
        ["info", c, "--region", "eu-west-1"],
        ["list", "http://127.0.0.1:9/c.ctnr", "--endpoint-url", "http://127.0.0.1:9"],
        ["verify", "http://127.0.0.1:9/c.ctnr", "--max-range", "67108865"],
        ["verify", "http://127.0.0.1:9/c.ctnr", "--connections", "64", "--max-range", "67108864"],
      ]
    ) {
      const run = await ctnr(`${dir}/cache`, ...args);
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, /--(connections|max-range|no-cache|region|endpoint-url)/);
    }
    assert.deepEqual(await tempFiles(dir), []);
  });
});
