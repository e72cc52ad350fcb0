/**
 * The test servers themselves: nginx (tests/_servers.ts) answers ranges and
 * misbehaves where asked, and each fault of the fault proxy
 * (tests/_fault_proxy.ts) reaches a plain fetch.
 */

import assert from "node:assert/strict";
import { nginxAvailable, type NginxServer, serving } from "./_servers.ts";
import { type FaultProxy, type FaultRule, proxying } from "./_fault_proxy.ts";
import { exists, pseudoRandomBytes, withTempDir } from "./_helpers.ts";

const BODY = pseudoRandomBytes(100_000, 15);
const NO_NGINX = !nginxAvailable();

/** Run `fn` with nginx serving a folder that holds `a.bin` (BODY). */
function withNginx(fn: (server: NginxServer) => Promise<void>): Promise<void> {
  return withTempDir(async (root) => {
    await Deno.writeFile(`${root}/a.bin`, BODY);
    await serving(root, fn);
  });
}

/** Run `fn` with a fault proxy with `rules` in front of nginx. */
function withProxy(rules: FaultRule[], fn: (proxy: FaultProxy) => Promise<void>): Promise<void> {
  return withNginx((server) => proxying(server.url, rules, fn));
}

/** Read a whole body; the error when the connection breaks before its end. */
async function readBody(response: Response): Promise<Uint8Array | Error> {
  try {
    return new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    return error as Error;
  }
}

Deno.test({
  name: "startNginx answers a suffix range with 206 and its Content-Range, with an ETag",
  ignore: NO_NGINX,
  fn: () =>
    withNginx(async ({ url }) => {
      const response = await fetch(`${url}/a.bin`, { headers: { range: "bytes=-10" } });
      const body = new Uint8Array(await response.arrayBuffer());
      assert.equal(response.status, 206);
      assert.equal(response.headers.get("content-range"), `bytes 99990-99999/100000`);
      assert.match(response.headers.get("etag") ?? "", /^"[0-9a-f]+-[0-9a-f]+"$/);
      assert.deepEqual(body, BODY.subarray(99_990));
    }),
});

Deno.test({
  name: "startNginx stop kills nginx and removes its temp folder",
  ignore: NO_NGINX,
  fn: async () => {
    let prefix = "";
    let url = "";
    await withNginx(async (server) => {
      url = server.url;
      prefix = server.prefix;
      assert.ok(await exists(`${prefix}/nginx.pid`), "nginx wrote its pid in its prefix");
    });
    assert.equal(await exists(prefix), false);
    await assert.rejects(fetch(`${url}/a.bin`));
  },
});

Deno.test({
  name: "startNginx /norange/ ignores Range: 200 with the whole body",
  ignore: NO_NGINX,
  fn: () =>
    withNginx(async ({ url }) => {
      const response = await fetch(`${url}/norange/a.bin`, { headers: { range: "bytes=-10" } });
      assert.equal(response.status, 200);
      assert.deepEqual(new Uint8Array(await response.arrayBuffer()), BODY);
    }),
});

Deno.test({
  name: "startNginx /flaky/ answers 503 to some of 30 requests and the range to the others",
  ignore: NO_NGINX,
  fn: () =>
    withNginx(async ({ url }) => {
      const statuses: number[] = [];
      for (let i = 0; i < 30; i++) {
        const response = await fetch(`${url}/flaky/a.bin`, { headers: { range: "bytes=0-9" } });
        await response.body?.cancel();
        statuses.push(response.status);
      }
      const failed = statuses.filter((s) => s === 503).length;
      // About a third of 30: 0 or 30 failures has a chance below 1e-5.
      assert.ok(failed > 0 && failed < 30, `503s: ${failed} of 30`);
      assert.equal(statuses.filter((s) => s === 206).length, 30 - failed);
    }),
});

Deno.test({
  name: "startNginx /drop/ closes the connection without an answer",
  ignore: NO_NGINX,
  fn: () =>
    withNginx(async ({ url, port }) => {
      await assert.rejects(fetch(`${url}/drop/a.bin`), TypeError);
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(new TextEncoder().encode("GET /drop/a.bin HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert.equal(await conn.read(new Uint8Array(100)), null);
      } finally {
        conn.close();
      }
    }),
});

Deno.test({
  name: "startNginx /dropsome/ drops some of 30 requests and answers the others",
  ignore: NO_NGINX,
  fn: () =>
    withNginx(async ({ url }) => {
      let dropped = 0;
      for (let i = 0; i < 30; i++) {
        try {
          const response = await fetch(`${url}/dropsome/a.bin`);
          assert.deepEqual(new Uint8Array(await response.arrayBuffer()), BODY);
        } catch (error) {
          if (!(error instanceof TypeError)) throw error;
          dropped++;
        }
      }
      assert.ok(dropped > 0 && dropped < 30, `dropped: ${dropped} of 30`);
    }),
});

Deno.test({
  name: "startNginx /slow/ sends about 256 KiB a second",
  ignore: NO_NGINX,
  fn: () =>
    withTempDir(async (root) => {
      // nginx lets the first second's worth through at once: 512 KiB take about 1 s.
      const big = pseudoRandomBytes(512 * 1024, 7);
      await Deno.writeFile(`${root}/big.bin`, big);
      await serving(root, async (server) => {
        let start = performance.now();
        const fast = await fetch(`${server.url}/big.bin`).then((r) => r.arrayBuffer());
        const fastMs = performance.now() - start;
        start = performance.now();
        const slow = await fetch(`${server.url}/slow/big.bin`).then((r) => r.arrayBuffer());
        const slowMs = performance.now() - start;
        assert.deepEqual(new Uint8Array(slow), big);
        assert.equal(fast.byteLength, big.length);
        assert.ok(slowMs > 700, `slow took ${slowMs} ms`);
        assert.ok(fastMs < slowMs / 2, `fast took ${fastMs} ms, slow ${slowMs} ms`);
      });
    }),
});

Deno.test({
  name: "startFaultProxy forwards and records method and headers",
  ignore: NO_NGINX,
  fn: () =>
    withProxy([], async (proxy) => {
      const response = await fetch(`${proxy.url}/a.bin`, {
        headers: { range: "bytes=0-9", "if-match": '"x"' },
      });
      await response.body?.cancel();
      // The If-Match reached nginx: a wrong ETag is 412.
      assert.equal(response.status, 412);
      const head = await fetch(`${proxy.url}/a.bin`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("content-length"), "100000");
      assert.equal(proxy.count, 2);
      assert.equal(proxy.requests[0]?.method, "GET");
      assert.equal(proxy.requests[0]?.headers.get("range"), "bytes=0-9");
      assert.equal(proxy.requests[0]?.headers.get("if-match"), '"x"');
      assert.equal(proxy.requests[1]?.method, "HEAD");
      assert.equal(proxy.requests[1]?.fault, undefined);
    }),
});

Deno.test({
  name: "startFaultProxy reset cuts the connection after N bytes of the body",
  ignore: NO_NGINX,
  fn: () =>
    withProxy([{ request: 1, fault: { kind: "reset", afterBytes: 1000 } }], async (proxy) => {
      const response = await fetch(`${proxy.url}/a.bin`);
      assert.equal(response.headers.get("content-length"), "100000");
      const reader = response.body!.getReader();
      let received = 0;
      let failure: unknown;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          received += value.length;
        }
      } catch (error) {
        failure = error;
      }
      assert.ok(failure instanceof Error, "the body ends in an error");
      assert.equal(received, 1000);
      // Only request 1 was faulted: the next gets the whole file.
      const again = await fetch(`${proxy.url}/a.bin`);
      assert.deepEqual(new Uint8Array(await again.arrayBuffer()), BODY);
      assert.deepEqual(proxy.requests.map((r) => r.fault?.kind), ["reset", undefined]);
    }),
});

Deno.test({
  name: "startFaultProxy stall holds the headers back for the time asked",
  ignore: NO_NGINX,
  fn: () =>
    withProxy([{ path: "/a.bin", fault: { kind: "stall", ms: 300 } }], async (proxy) => {
      const start = performance.now();
      const response = await fetch(`${proxy.url}/a.bin`);
      const headersMs = performance.now() - start;
      assert.deepEqual(new Uint8Array(await response.arrayBuffer()), BODY);
      assert.ok(headersMs >= 280, `headers after ${headersMs} ms`);
    }),
});

Deno.test({
  name: "startFaultProxy stop ends a stall in progress",
  ignore: NO_NGINX,
  fn: () =>
    withProxy([{ path: "/a.bin", fault: { kind: "stall", ms: 60_000 } }], async (proxy) => {
      const answer = fetch(`${proxy.url}/a.bin`).then(readBody, (error) => error as Error);
      while (proxy.count === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      const start = performance.now();
      await proxy.stop();
      assert.ok(performance.now() - start < 5000);
      assert.ok((await answer) instanceof Error);
    }),
});

Deno.test({
  name: "startFaultProxy dropRange forwards without Range: 200 with the whole body",
  ignore: NO_NGINX,
  fn: () =>
    withProxy([{ path: /^\/a\.bin$/, fault: { kind: "dropRange" } }], async (proxy) => {
      const response = await fetch(`${proxy.url}/a.bin`, { headers: { range: "bytes=-10" } });
      assert.equal(response.status, 200);
      assert.deepEqual(new Uint8Array(await response.arrayBuffer()), BODY);
      assert.equal(proxy.requests[0]?.headers.get("range"), "bytes=-10");
    }),
});

for (const status of [429, 503]) {
  Deno.test({
    name: `startFaultProxy status answers ${status} with Retry-After`,
    ignore: NO_NGINX,
    fn: () =>
      withProxy(
        [{ path: "/a.bin", times: 2, fault: { kind: "status", status, retryAfter: 3 } }],
        async (proxy) => {
          for (let i = 0; i < 2; i++) {
            const response = await fetch(`${proxy.url}/a.bin`);
            await response.body?.cancel();
            assert.equal(response.status, status);
            assert.equal(response.headers.get("retry-after"), "3");
          }
          // `times: 2`: the third request is forwarded.
          const third = await fetch(`${proxy.url}/a.bin`);
          assert.equal(third.status, 200);
          assert.deepEqual(new Uint8Array(await third.arrayBuffer()), BODY);
          assert.deepEqual(proxy.requests.map((r) => r.fault?.kind), [
            "status",
            "status",
            undefined,
          ]);
        },
      ),
  });
}

Deno.test({
  name: "startFaultProxy status without retryAfter sends no Retry-After",
  ignore: NO_NGINX,
  fn: () =>
    withProxy([{ path: "/a.bin", fault: { kind: "status", status: 503 } }], async (proxy) => {
      const response = await fetch(`${proxy.url}/a.bin`);
      await response.body?.cancel();
      assert.equal(response.status, 503);
      assert.equal(response.headers.get("retry-after"), null);
    }),
});

Deno.test({
  name: "startFaultProxy wrongContentRange shifts the range or sends the one given",
  ignore: NO_NGINX,
  fn: () =>
    withProxy([
      { request: 1, fault: { kind: "wrongContentRange" } },
      { request: 2, fault: { kind: "wrongContentRange", contentRange: "bytes 0-9/5" } },
    ], async (proxy) => {
      const headers = { range: "bytes=10-19" };
      const shifted = await fetch(`${proxy.url}/a.bin`, { headers });
      assert.equal(shifted.status, 206);
      assert.equal(shifted.headers.get("content-range"), "bytes 11-20/100000");
      assert.deepEqual(new Uint8Array(await shifted.arrayBuffer()), BODY.subarray(10, 20));
      const given = await fetch(`${proxy.url}/a.bin`, { headers });
      await given.body?.cancel();
      assert.equal(given.headers.get("content-range"), "bytes 0-9/5");
      const right = await fetch(`${proxy.url}/a.bin`, { headers });
      await right.body?.cancel();
      assert.equal(right.headers.get("content-range"), "bytes 10-19/100000");
    }),
});

Deno.test({
  name: "startFaultProxy shortBody announces more bytes than it sends",
  ignore: NO_NGINX,
  fn: () =>
    withProxy([{ request: 1, fault: { kind: "shortBody", missingBytes: 5 } }], async (proxy) => {
      const response = await fetch(`${proxy.url}/a.bin`, { headers: { range: "bytes=0-99" } });
      assert.equal(response.status, 206);
      assert.equal(response.headers.get("content-length"), "105");
      assert.ok((await readBody(response)) instanceof Error);
    }),
});

Deno.test({
  name: "startFaultProxy setRules replaces the rules and addRule appends one",
  ignore: NO_NGINX,
  fn: () =>
    withProxy([{ path: "/a.bin", fault: { kind: "status", status: 503 } }], async (proxy) => {
      proxy.setRules([]);
      proxy.addRule({ request: 2, fault: { kind: "status", status: 429 } });
      const first = await fetch(`${proxy.url}/a.bin`);
      await first.body?.cancel();
      const second = await fetch(`${proxy.url}/a.bin`);
      await second.body?.cancel();
      assert.deepEqual([first.status, second.status], [200, 429]);
    }),
});
