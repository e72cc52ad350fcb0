/**
 * A fault-injecting HTTP/1.1 proxy for the remote-reading tests: it listens on
 * a free port of 127.0.0.1, forwards each request to an upstream base URL and
 * can break the answer on purpose, per request number or per path.
 *
 * It speaks HTTP/1.1 over raw TCP (`Deno.listen`), one request per connection
 * (every answer carries `Connection: close`), so that a fault is what the
 * client really sees on the wire: a cut connection is a closed socket after
 * the bytes named, not a stream error that a server library might turn into
 * a clean end.
 *
 * ```ts ignore
 * const proxy = startFaultProxy(nginx.url, {
 *   rules: [
 *     { request: 1, fault: { kind: "status", status: 503, retryAfter: 1 } },
 *     { path: "/big.ctnr", times: 2, fault: { kind: "reset", afterBytes: 1000 } },
 *   ],
 * });
 * await fetch(`${proxy.url}/big.ctnr`); // 503, Retry-After: 1
 * proxy.requests; // [{ number: 1, method: "GET", path: "/big.ctnr", headers, fault }]
 * await proxy.stop();
 * ```
 *
 * Faults ({@link Fault}):
 * - `reset` — forward, send the head (true Content-Length) and the first
 *   `afterBytes` bytes of the body, then close the connection.
 * - `stall` — wait `ms` milliseconds before anything (the upstream request
 *   included), then answer as usual.
 * - `dropRange` — forward without the request's `Range` header (and
 *   `If-Range`): the upstream answers 200 with the whole body.
 * - `status` — answer `status` (429, 503, ...) with `Retry-After: retryAfter`
 *   (seconds; omitted when not given) and a short text body; nothing is
 *   forwarded.
 * - `wrongContentRange` — forward, then replace the answer's Content-Range by
 *   `contentRange`, or by default shift the upstream's range one byte up
 *   (`bytes 10-19/100` becomes `bytes 11-20/100`).
 * - `shortBody` — forward, announce a Content-Length `missingBytes` (default
 *   1) larger than the body, send the whole body and close.
 *
 * Rules ({@link FaultRule}) are tried in order; the first that matches a
 * request applies, and each rule applies at most `times` times (default:
 * once for a `request` rule, without end otherwise). Requests are numbered
 * from 1 in the order their heads were read. Every request is recorded
 * (method, path, headers as received, the fault applied) in `requests`,
 * so tests can assert there was no HEAD, no multi-range, an If-Match.
 *
 * @module
 */

/** One way to break an answer. */
export type Fault =
  | { kind: "reset"; afterBytes: number }
  | { kind: "stall"; ms: number }
  | { kind: "dropRange" }
  | { kind: "status"; status: number; retryAfter?: number }
  | { kind: "wrongContentRange"; contentRange?: string }
  | { kind: "shortBody"; missingBytes?: number };

/** When a fault applies: the request's number, its path, or both must match. */
export interface FaultRule {
  /** The request's number, from 1, counted over the whole proxy. */
  request?: number;
  /** The request's path (query included): exact string, or a RegExp tested on it. */
  path?: string | RegExp;
  /** At most this many times. @default 1 with `request`, Infinity otherwise */
  times?: number;
  /** What to do. */
  fault: Fault;
}

/** One request as the proxy received it. */
export interface RecordedRequest {
  /** From 1, in arrival order. */
  number: number;
  /** `GET`, `HEAD`, ... */
  method: string;
  /** Path and query as sent: `/a.ctnr?x=1`. */
  path: string;
  /** The request's headers as received (names lower-case). */
  headers: Headers;
  /** The fault applied, if any. */
  fault: Fault | undefined;
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Rules tried in order for each request. @default [] */
  rules?: FaultRule[];
}

/** A running proxy. */
export interface FaultProxy {
  /** Base URL without a trailing slash: `http://127.0.0.1:<port>`. */
  url: string;
  /** The loopback TCP port it listens on. */
  port: number;
  /** Every request received, in order. */
  requests: RecordedRequest[];
  /** How many requests were received. */
  readonly count: number;
  /** Append a rule (after the existing ones). */
  addRule(rule: FaultRule): void;
  /** Replace every rule (counts of uses start again). */
  setRules(rules: FaultRule[]): void;
  /** Close the listener and every open connection, cancel stalls, wait for handlers. */
  stop(): Promise<void>;
}

const HEAD_LIMIT_BYTES = 64 * 1024;
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "content-length",
];

/**
 * Start a fault proxy in front of `upstream`.
 *
 * @param upstream base URL the request paths are appended to (`http://127.0.0.1:8080`)
 * @param options the rules
 * @returns the running proxy
 */
export function startFaultProxy(upstream: string, options: FaultProxyOptions = {}): FaultProxy {
  const base = upstream.replace(/\/+$/, "");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const client = Deno.createHttpClient({});
  const conns = new Set<Deno.Conn>();
  const handlers = new Set<Promise<void>>();
  const stalls = new Set<() => void>();
  const requests: RecordedRequest[] = [];
  let rules: { rule: FaultRule; used: number }[] = [];
  let stopped = false;

  const setRules = (list: FaultRule[]) => {
    rules = list.map((rule) => ({ rule, used: 0 }));
  };
  setRules(options.rules ?? []);

  const pick = (number: number, path: string): Fault | undefined => {
    for (const entry of rules) {
      const { rule } = entry;
      const limit = rule.times ?? (rule.request !== undefined ? 1 : Infinity);
      if (entry.used >= limit) continue;
      if (rule.request !== undefined && rule.request !== number) continue;
      if (rule.path !== undefined) {
        const ok = typeof rule.path === "string" ? rule.path === path : rule.path.test(path);
        if (!ok) continue;
      }
      entry.used++;
      return rule.fault;
    }
    return undefined;
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const id = setTimeout(done, ms);
      function done() {
        clearTimeout(id);
        stalls.delete(done);
        resolve();
      }
      stalls.add(done);
    });

  async function handle(conn: Deno.Conn): Promise<void> {
    const head = await readHead(conn);
    if (head === null || stopped) return;
    const number = requests.length + 1;
    const fault = pick(number, head.path);
    requests.push({ number, method: head.method, path: head.path, headers: head.headers, fault });

    if (fault?.kind === "stall") {
      await sleep(fault.ms);
      if (stopped) return;
    }
    if (fault?.kind === "status") {
      const body = new TextEncoder().encode(`fault proxy: ${fault.status}\n`);
      const headers = new Headers({ "content-type": "text/plain" });
      if (fault.retryAfter !== undefined) headers.set("retry-after", String(fault.retryAfter));
      await writeAnswer(conn, fault.status, "Fault", headers, body, body.length, head.method);
      return;
    }

    const forward = new Headers(head.headers);
    for (const name of [...HOP_BY_HOP, "host"]) forward.delete(name);
    if (!forward.has("accept-encoding")) forward.set("accept-encoding", "identity");
    if (fault?.kind === "dropRange") {
      forward.delete("range");
      forward.delete("if-range");
    }
    let answer: Response;
    try {
      answer = await fetch(`${base}${head.path}`, {
        method: head.method,
        headers: forward,
        body: head.body.length > 0 ? head.body : null,
        redirect: "manual",
        client,
      });
    } catch (error) {
      const body = new TextEncoder().encode(`fault proxy: upstream failed: ${error}\n`);
      await writeAnswer(conn, 502, "Bad Gateway", new Headers(), body, body.length, head.method);
      return;
    }
    const body = new Uint8Array(await answer.arrayBuffer());
    const headers = new Headers(answer.headers);
    const upstreamLength = headers.get("content-length");
    for (const name of HOP_BY_HOP) headers.delete(name);
    let length = head.method === "HEAD" && upstreamLength !== null
      ? Number(upstreamLength)
      : body.length;
    let sent = body;
    if (fault?.kind === "wrongContentRange") {
      headers.set("content-range", fault.contentRange ?? shiftRange(headers.get("content-range")));
    } else if (fault?.kind === "shortBody") {
      length += fault.missingBytes ?? 1;
    } else if (fault?.kind === "reset") {
      sent = body.subarray(0, Math.min(fault.afterBytes, body.length));
    }
    await writeAnswer(conn, answer.status, answer.statusText, headers, sent, length, head.method);
  }

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch {
        return; // listener closed
      }
      conns.add(conn);
      const handler = handle(conn).catch(() => {/* the client went away */}).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* already closed */ }
        handlers.delete(handler);
      });
      handlers.add(handler);
    }
  })();

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    get count() {
      return requests.length;
    },
    addRule(rule) {
      rules.push({ rule, used: 0 });
    },
    setRules,
    async stop() {
      if (stopped) return;
      stopped = true;
      listener.close();
      await accepting;
      for (const wake of [...stalls]) wake();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      await Promise.allSettled([...handlers]);
      client.close();
    },
  };
}

/**
 * A fault proxy with `rules` in front of `upstream` for `fn`, then stopped.
 *
 * @param upstream base URL the request paths are appended to
 * @param rules the rules, as {@link FaultProxyOptions.rules}
 * @param fn what runs while the proxy listens
 * @returns what `fn` returns
 */
export async function proxying<T>(
  upstream: string,
  rules: FaultRule[],
  fn: (proxy: FaultProxy) => Promise<T>,
): Promise<T> {
  const proxy = startFaultProxy(upstream, { rules });
  try {
    return await fn(proxy);
  } finally {
    await proxy.stop();
  }
}

/** A request head and its body (read whole when it has a Content-Length). */
interface RequestHead {
  method: string;
  path: string;
  headers: Headers;
  body: Uint8Array<ArrayBuffer>;
}

/** Read one HTTP/1.1 request from `conn`; null when the client closed first. */
async function readHead(conn: Deno.Conn): Promise<RequestHead | null> {
  let data: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  const chunk = new Uint8Array(16 * 1024);
  let end = -1;
  while ((end = findHeadEnd(data)) < 0) {
    if (data.length > HEAD_LIMIT_BYTES) throw new Error("request head too large");
    const n = await conn.read(chunk);
    if (n === null) return null;
    data = concat(data, chunk.subarray(0, n));
  }
  const lines = new TextDecoder().decode(data.subarray(0, end)).split("\r\n");
  const [method = "", path = "/"] = (lines[0] ?? "").split(" ");
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  const bodyLength = Number(headers.get("content-length") ?? 0);
  let body: Uint8Array<ArrayBuffer> = data.subarray(end + 4);
  while (body.length < bodyLength) {
    const n = await conn.read(chunk);
    if (n === null) break;
    body = concat(body, chunk.subarray(0, n));
  }
  return { method, path, headers, body: body.subarray(0, bodyLength) };
}

/** Write a status line, `headers`, Content-Length `length` and `body` (the body not for HEAD). */
async function writeAnswer(
  conn: Deno.Conn,
  status: number,
  statusText: string,
  headers: Headers,
  body: Uint8Array,
  length: number,
  method: string,
): Promise<void> {
  let text = `HTTP/1.1 ${status} ${statusText || "Status"}\r\n`;
  for (const [name, value] of headers) text += `${name}: ${value}\r\n`;
  text += `content-length: ${length}\r\nconnection: close\r\n\r\n`;
  await writeAll(conn, new TextEncoder().encode(text));
  if (method !== "HEAD") await writeAll(conn, body);
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/** `bytes a-b/t` moved one byte up; a made-up wrong range when there is none. */
function shiftRange(contentRange: string | null): string {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange ?? "");
  if (match === null) return "bytes 1-1/1";
  return `bytes ${Number(match[1]) + 1}-${Number(match[2]) + 1}/${match[3]}`;
}

function findHeadEnd(data: Uint8Array): number {
  for (let i = 0; i + 3 < data.length; i++) {
    if (data[i] === 13 && data[i + 1] === 10 && data[i + 2] === 13 && data[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
