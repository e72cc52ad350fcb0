/**
 * Faults while reading a container over HTTP (issue 15, "Done means"): each ends in success with
 * the retry counted, or in a named error with its documented exit code, and no temp file is
 * left in the output folder or the cache. A real nginx (tests/_servers.ts) and the fault proxy
 * (tests/_fault_proxy.ts) in front of it.
 */

import assert from "node:assert/strict";
import { nginxAvailable, type NginxServer } from "./_servers.ts";
import { type FaultProxy, type FaultRule, proxying } from "./_fault_proxy.ts";
import { type CliRun, concatBytes, diffTrees } from "./_helpers.ts";
import { buildSmall, ctnr, tempFiles, withServed } from "./_remote.ts";
import { ContainerReader, RemoteError } from "../mod.ts";
import { EnvironmentError } from "../lib/errors.ts";

const ignore = !nginxAvailable();
/** Size of `data/big.bin` in the served containers: the container is past the 1 MiB tail. */
const BIG = 3_000_000;

interface Setup {
  root: string;
  nginx: NginxServer;
  proxy: FaultProxy;
  /** The container through the proxy. */
  url: string;
  /** Its size in bytes. */
  size: number;
  /** The same container extracted from the local file. */
  expected: string;
}

/** A container of 3 MB behind nginx and the fault proxy (`rules`), for `fn`. */
function withServers(rules: FaultRule[], fn: (setup: Setup) => Promise<void>): Promise<void> {
  return withServed(
    (served) => buildSmall(`${served}/mid.ctnr`, false, BIG),
    async (root, nginx) => {
      const expected = `${root}/expected`;
      assert.equal(
        (await ctnr(`${root}/c0`, "extract", `${root}/served/mid.ctnr`, expected)).code,
        0,
      );
      const size = (await Deno.stat(`${root}/served/mid.ctnr`)).size;
      await proxying(
        nginx.url,
        rules,
        (proxy) => fn({ root, nginx, proxy, url: `${proxy.url}/mid.ctnr`, size, expected }),
      );
    },
  );
}

/** `extract --json URL` into `root/out`: the run, its `remote` counts, no temp file anywhere. */
async function extract(
  setup: Setup,
  url: string,
  ...flags: string[]
): Promise<{ run: CliRun; remote: { requests: number; retries: number; bytes_received: number } }> {
  const out = `${setup.root}/out`;
  await Deno.remove(out, { recursive: true }).catch(() => {});
  const run = await ctnr(`${setup.root}/cache`, "extract", "--json", ...flags, url, out);
  assert.deepEqual(await tempFiles(out), [], "temp files in the output folder");
  assert.deepEqual(await tempFiles(`${setup.root}/cache`), [], "temp files in the cache");
  const json = JSON.parse(run.stdout);
  return { run, remote: json.remote };
}

/** The run succeeded, extracted the whole tree, and counted at least one retry. */
async function succeededAfterRetry(setup: Setup, result: Awaited<ReturnType<typeof extract>>) {
  assert.equal(result.run.code, 0, result.run.stderr);
  assert.ok(result.remote.retries > 0, JSON.stringify(result.remote));
  assert.deepEqual(await diffTrees(setup.expected, `${setup.root}/out`), []);
}

/** The run failed with exit `code` and a message matching `message`, naming the URL. */
function failedWith(run: CliRun, code: number, message: RegExp, name: string): void {
  assert.equal(run.code, code, run.stderr);
  assert.match(run.stderr, message);
  assert.ok(run.stderr.includes(name), run.stderr);
  assert.ok(!/\n\s+at /.test(run.stderr), `a stack trace: ${run.stderr}`);
}

Deno.test({
  name:
    "remote faults: nginx's /flaky/ (503s) and /dropsome/ (444) end in success, retries counted",
  ignore,
  fn: () =>
    withServers([], async (setup) => {
      for (const path of ["flaky", "dropsome"]) {
        // 64 KiB requests: about 50 of them, a third of which fail.
        const result = await extract(
          setup,
          `${setup.nginx.url}/${path}/mid.ctnr`,
          "--max-range",
          "65536",
        );
        await succeededAfterRetry(setup, result);
      }
    }),
});

Deno.test({
  name:
    "remote faults: a reset mid-body is resumed from its last byte, the retry counted; a Content-Length past the range is read whole",
  ignore,
  fn: () =>
    withServers([{ request: 2, fault: { kind: "reset", afterBytes: 100_000 } }], async (setup) => {
      const result = await extract(setup, setup.url);
      await succeededAfterRetry(setup, result);
      const [, cut, resumed] = setup.proxy.requests;
      const range = (header: string | null) => header!.slice(6).split("-").map(Number);
      const [from, to] = range(cut!.headers.get("range"));
      assert.deepEqual(range(resumed!.headers.get("range")), [from! + 100_000, to]);
      // The payload once (and the 1 MiB tail read at open), not again from its start.
      assert.ok(result.remote.bytes_received < setup.size + (1 << 20), JSON.stringify(result));
      await Deno.remove(`${setup.root}/cache`, { recursive: true });
      setup.proxy.setRules([{ request: setup.proxy.count + 2, fault: { kind: "shortBody" } }]);
      // A Content-Length one byte past the range asked for, every byte of it sent: whole.
      const short = await extract(setup, setup.url);
      assert.equal(short.run.code, 0, short.run.stderr);
      assert.equal(setup.proxy.requests.at(-1)?.fault?.kind, "shortBody");
      assert.deepEqual(await diffTrees(setup.expected, `${setup.root}/out`), []);
    }),
});

Deno.test({
  name: "remote faults: a stall before the headers past the idle timeout is retried (library)",
  ignore,
  fn: () =>
    withServers([{ request: 1, fault: { kind: "stall", ms: 3_000 } }], async (setup) => {
      const started = Date.now();
      const reader = await ContainerReader.open(setup.url, {
        remote: { idleTimeout: 500, cacheDir: `${setup.root}/cache` },
      });
      try {
        assert.ok(Date.now() - started < 2_500, "waited for the stalled request");
        assert.equal(reader.remote?.stats.retries, 1);
        assert.equal((await reader.find("run.sh"))?.relpath, "run.sh");
      } finally {
        reader.close();
      }
    }),
});

Deno.test({
  name: "remote faults: a body always cut short ends in a named network error after the retries",
  ignore,
  fn: () =>
    withServers([{ path: "/mid.ctnr", fault: { kind: "shortBody" } }], async (setup) => {
      await assert.rejects(
        ContainerReader.open(setup.url, {
          remote: { retries: 2, backoff: 1, cacheDir: `${setup.root}/cache` },
        }),
        (error: unknown) =>
          error instanceof EnvironmentError &&
          /mid\.ctnr.*a body cut short.*3 times in a row/.test(error.message),
      );
      assert.equal(setup.proxy.count, 3);
      assert.deepEqual(await tempFiles(`${setup.root}/cache`), []);
    }),
});

Deno.test({
  name:
    "remote faults: a dropped Range (200 whole) and a wrong Content-Range are REMOTE_PROTOCOL, not downloaded whole",
  ignore,
  fn: () =>
    withServers([], async (setup) => {
      for (
        const [fault, message] of [
          [
            { kind: "dropRange" },
            /does not answer Range requests \(it answered 200 with the whole/,
          ],
          [
            { kind: "wrongContentRange" },
            /asked for bytes \d+-\d+, the server answered Content-Range/,
          ],
        ] as const
      ) {
        setup.proxy.setRules([{ request: setup.proxy.count + 2, fault }]);
        await Deno.remove(`${setup.root}/cache`, { recursive: true }).catch(() => {});
        const { run } = await extract(setup, setup.url);
        failedWith(run, 1, message, "mid.ctnr");
        const json = JSON.parse(run.stdout);
        assert.equal(json.error.code, "REMOTE_PROTOCOL", run.stdout);
        assert.ok(json.remote.bytes_received < setup.size, JSON.stringify(json.remote));
      }
    }),
});

Deno.test({
  name: "remote faults: 429 with Retry-After: 1 is honoured (the run takes at least 1 s)",
  ignore,
  fn: () =>
    withServers(
      [{ request: 2, fault: { kind: "status", status: 429, retryAfter: 1 } }],
      async (setup) => {
        const started = Date.now();
        const result = await extract(setup, setup.url);
        assert.ok(Date.now() - started >= 1_000, `${Date.now() - started} ms`);
        await succeededAfterRetry(setup, result);
      },
    ),
});

Deno.test({
  name:
    "remote faults: 404 is REMOTE_NOT_FOUND, 403 'URL expired or not authorised', /norange/ named, each exit 1",
  ignore,
  fn: () =>
    withServers(
      [{ path: /^\/denied\//, fault: { kind: "status", status: 403 } }],
      async (setup) => {
        const cache = `${setup.root}/cache`;
        for (const command of [["list"], ["verify", "--json"], ["cat"]]) {
          const tail = command[0] === "cat" ? ["docs/a.md"] : [];
          const missing = await ctnr(cache, ...command, `${setup.proxy.url}/no-such.ctnr`, ...tail);
          failedWith(missing, 1, /HTTP 404: no such object/, "no-such.ctnr");
          const denied = await ctnr(
            cache,
            ...command,
            `${setup.proxy.url}/denied/mid.ctnr?X-Sig=s3cret`,
            ...tail,
          );
          failedWith(denied, 1, /URL expired or not authorised/, "/denied/mid.ctnr");
          assert.ok(!denied.stderr.includes("s3cret") && !denied.stdout.includes("s3cret"));
          const norange = await ctnr(
            cache,
            ...command,
            `${setup.nginx.url}/norange/mid.ctnr`,
            ...tail,
          );
          failedWith(norange, 1, /does not answer Range requests/, "/norange/mid.ctnr");
          if (command[0] === "verify") {
            assert.equal(JSON.parse(missing.stdout).error.code, "REMOTE_NOT_FOUND");
            assert.equal(JSON.parse(denied.stdout).error.code, "REMOTE_DENIED");
            assert.equal(JSON.parse(norange.stdout).error.code, "REMOTE_PROTOCOL");
            assert.ok(JSON.parse(norange.stdout).remote.bytes_received < setup.size);
          }
        }
        assert.deepEqual(await tempFiles(cache), []);
      },
    ),
});

Deno.test({
  name: "remote faults: a container replaced mid-read stops with REMOTE_CHANGED (412), exit 1",
  ignore,
  fn: () =>
    withServers([{ request: 3, fault: { kind: "stall", ms: 1_500 } }], async (setup) => {
      const running = extract(setup, setup.url, "--connections", "1", "--max-range", "65536");
      await new Promise((resolve) => setTimeout(resolve, 500));
      await buildSmall(`${setup.root}/next.ctnr`, false, BIG + 10);
      await Deno.rename(`${setup.root}/next.ctnr`, `${setup.root}/served/mid.ctnr`);
      const { run } = await running;
      failedWith(run, 1, /changed while it was read.*412/, "mid.ctnr");
      assert.equal(JSON.parse(run.stdout).error.code, "REMOTE_CHANGED");
      assert.ok(setup.proxy.requests.some((r) => r.headers.has("if-match")));
    }),
});

Deno.test({
  name: "remote faults: a corrupt payload is exit 1 both ways and names the entry",
  ignore,
  fn: () =>
    withServers([], async (setup) => {
      const file = `${setup.root}/served/mid.ctnr`;
      const bytes = await Deno.readFile(file);
      const at = bytes.indexOf(0x23); // "#!/bin/sh" of run.sh
      bytes[at + 3] = bytes[at + 3]! ^ 0xff;
      await Deno.writeFile(`${setup.root}/served/bad.ctnr`, bytes);
      for (const target of [`${setup.root}/served/bad.ctnr`, `${setup.proxy.url}/bad.ctnr`]) {
        const run = await ctnr(`${setup.root}/cache`, "verify", target);
        assert.equal(run.code, 1, run.stderr);
        assert.match(run.stdout + run.stderr, /run\.sh.*SHA-256|SHA-256.*run\.sh/);
      }
    }),
});

Deno.test({
  name:
    "remote faults: /slow/ works; Ctrl-C of an extract on /slow/ exits 130 and leaves no temp file",
  ignore,
  fn: () =>
    withServers([], async (setup) => {
      await buildSmall(`${setup.root}/served/small.ctnr`);
      const cat = await ctnr(
        `${setup.root}/cache`,
        "cat",
        `${setup.nginx.url}/slow/small.ctnr`,
        "run.sh",
      );
      assert.equal(cat.code, 0, cat.stderr);
      assert.equal(cat.stdout, "#!/bin/sh\necho hi\n");
      const out = `${setup.root}/sigint-out`;
      const cli = new URL("../cli.ts", import.meta.url).pathname;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", cli, "extract", `${setup.nginx.url}/slow/mid.ctnr`, out],
        env: { CTNR_CACHE_DIR: `${setup.root}/cache` },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Past startup and into the transfer (3 MB at 256 KiB/s takes about 12 s).
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      child.kill("SIGINT");
      const { code, stderr } = await child.output();
      assert.equal(code, 130, new TextDecoder().decode(stderr));
      assert.deepEqual(await tempFiles(out), []);
      assert.deepEqual(await tempFiles(`${setup.root}/cache`), []);
    }),
});

Deno.test({
  name:
    "remote faults: behind a server that ignores If-Match, a replaced container is REMOTE_CHANGED by its ETag, or by its size without one",
  ignore,
  fn: () =>
    withServers([], async (setup) => {
      for (const etags of [true, false]) {
        const served = `${setup.root}/served/v${etags ? 1 : 2}.ctnr`;
        await buildSmall(served, false, BIG);
        // If-Match never reaches the server; without `etags` no ETag reaches the reader.
        const ignoring: typeof fetch = async (input, init) => {
          const request = new Request(input, init);
          request.headers.delete("if-match");
          const response = await fetch(request);
          if (etags) return response;
          const headers = new Headers(response.headers);
          headers.delete("etag");
          return new Response(response.body, { status: response.status, headers });
        };
        const reader = await ContainerReader.open(`${setup.nginx.url}/v${etags ? 1 : 2}.ctnr`, {
          remote: { fetch: ignoring, cacheDir: null, retries: 0 },
        });
        try {
          const entry = (await reader.find("data/big.bin"))!;
          // Replaced: the same size with another ETag (mtime), or another size.
          const bytes = await Deno.readFile(served);
          if (etags) {
            bytes[0] = bytes[0]! ^ 1;
            await Deno.writeFile(`${served}.new`, bytes);
            await Deno.utime(`${served}.new`, 1, 1);
          } else await Deno.writeFile(`${served}.new`, concatBytes([bytes, new Uint8Array(7)]));
          await Deno.rename(`${served}.new`, served);
          await assert.rejects(
            reader.readStored(entry),
            (error: unknown) =>
              error instanceof RemoteError && error.code === "REMOTE_CHANGED" &&
              (etags ? /ETag is now/ : /size is now/).test(error.message),
          );
        } finally {
          reader.close();
        }
      }
    }),
});
