/**
 * A real HTTP server for the remote-reading tests: nginx, started as a child
 * process on a free loopback port, serving one folder with ETags and Range
 * requests, plus locations that misbehave on purpose.
 *
 * Locations (each serves the same `root`; `/slow/a.bin` is `root/a.bin`):
 * - `/` — plain: ETag, Range (single and multi-range), keep-alive.
 * - `/slow/` — the body at most {@link SLOW_RATE_BYTES} bytes per second
 *   per connection (`limit_rate`).
 * - `/flaky/` — about a third of requests answer 503 (`split_clients` on
 *   `$request_id`), the rest as `/`.
 * - `/drop/` — every request: the connection is closed with no answer
 *   (`return 444`).
 * - `/dropsome/` — about a third of requests closed with no answer, the rest
 *   as `/`.
 * - `/norange/` — Range ignored (`max_ranges 0`): 200 with the whole body.
 *
 * nginx runs with `master_process off` (one process, the user who started
 * it: no `user` switch to nobody, so a temp folder of mode 0700 stays
 * readable), its pid, logs and temp paths inside a temp folder that
 * `stop()` removes; {@link serving} stops it after a callback. Tests skip
 * themselves where nginx is missing:
 * `Deno.test({ ignore: !nginxAvailable(), ... })`.
 *
 * @module
 */

/** Bytes per second that `/slow/` sends on one connection. */
export const SLOW_RATE_BYTES = 256 * 1024;

/** Milliseconds that {@link startNginx} waits for the port to answer. */
const START_TIMEOUT_MS = 10_000;

/** A running nginx. */
export interface NginxServer {
  /** Base URL without a trailing slash: `http://127.0.0.1:<port>`. */
  url: string;
  /** The loopback TCP port it listens on. */
  port: number;
  /** Its temp folder (nginx.conf, pid, logs, temp files), removed by `stop()`. */
  prefix: string;
  /** Kill nginx, wait for it to exit and remove its temp folder. */
  stop(): Promise<void>;
}

let nginxPath: string | null | undefined;

/** The nginx binary's path, or null when none is installed. */
export function nginxBinary(): string | null {
  if (nginxPath !== undefined) return nginxPath;
  nginxPath = null;
  const dirs = (Deno.env.get("PATH") ?? "").split(":").concat(["/usr/sbin", "/sbin"]);
  for (const dir of dirs) {
    if (dir === "") continue;
    try {
      const info = Deno.statSync(`${dir}/nginx`);
      if (info.isFile && ((info.mode ?? 0) & 0o111) !== 0) {
        nginxPath = `${dir}/nginx`;
        break;
      }
    } catch { /* not here */ }
  }
  return nginxPath;
}

/** True when an nginx binary is installed (for `Deno.test({ ignore: !nginxAvailable() })`). */
export function nginxAvailable(): boolean {
  return nginxBinary() !== null;
}

/**
 * Start nginx serving `root` at `/` (and its fault locations) on a free
 * port of 127.0.0.1; resolves once the port accepts connections.
 *
 * @param root the folder to serve (absolute or relative to the working folder)
 * @returns the server's URL, port and `stop()`
 * @throws {Error} when nginx is missing, exits early (its stderr in the
 * message) or does not answer within 10 seconds
 */
export async function startNginx(root: string): Promise<NginxServer> {
  const binary = nginxBinary();
  if (binary === null) throw new Error("Cannot start nginx: no nginx binary on PATH");
  const absoluteRoot = await Deno.realPath(root);
  const dir = await Deno.makeTempDir({ prefix: "ctnr-nginx-" });
  try {
    const port = freePort();
    await Deno.writeTextFile(`${dir}/nginx.conf`, nginxConf(dir, absoluteRoot, port));
    const child = new Deno.Command(binary, {
      args: ["-p", `${dir}/`, "-c", `${dir}/nginx.conf`, "-g", "daemon off;"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });
    const stop = async () => {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* already gone */ }
      }
      await status;
      await stderr;
      await Deno.remove(dir, { recursive: true });
    };
    try {
      await waitForPort(port, () => exited);
    } catch (error) {
      await stop();
      const detail = (await stderr).trim();
      throw new Error(
        `Cannot start nginx on port ${port}: ${(error as Error).message}${
          detail ? `: ${detail}` : ""
        }`,
      );
    }
    return { url: `http://127.0.0.1:${port}`, port, prefix: dir, stop };
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

/**
 * Serve `dir` (made when missing) with nginx for `fn`, then stop it.
 *
 * @param dir the folder served
 * @param fn what runs while it is served
 * @returns what `fn` returns
 */
export async function serving<T>(
  dir: string,
  fn: (nginx: NginxServer) => Promise<T>,
): Promise<T> {
  await Deno.mkdir(dir, { recursive: true });
  const nginx = await startNginx(dir);
  try {
    return await fn(nginx);
  } finally {
    await nginx.stop();
  }
}

/** The nginx.conf of one server; every path it writes is under `dir`. */
function nginxConf(dir: string, root: string, port: number): string {
  const q = (s: string) => JSON.stringify(s);
  const serveRoot = `alias ${q(`${root}/`)};`;
  return `master_process off;
pid ${q(`${dir}/nginx.pid`)};
error_log ${q(`${dir}/error.log`)} warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${q(`${dir}/client_body`)};
  proxy_temp_path ${q(`${dir}/proxy`)};
  fastcgi_temp_path ${q(`${dir}/fastcgi`)};
  uwsgi_temp_path ${q(`${dir}/uwsgi`)};
  scgi_temp_path ${q(`${dir}/scgi`)};
  default_type application/octet-stream;
  etag on;
  sendfile on;
  split_clients "$request_id" $flaky_fault { 33% fail; * ok; }
  split_clients "$request_id" $dropsome_fault { 33% drop; * ok; }
  server {
    listen 127.0.0.1:${port};
    root ${q(root)};
    location / { }
    location /slow/ { ${serveRoot} limit_rate ${SLOW_RATE_BYTES}; }
    location /flaky/ { ${serveRoot} if ($flaky_fault = fail) { return 503; } }
    location /drop/ { return 444; }
    location /dropsome/ { ${serveRoot} if ($dropsome_fault = drop) { return 444; } }
    location /norange/ { ${serveRoot} max_ranges 0; }
  }
}
`;
}

/** A TCP port of 127.0.0.1 free a moment ago (the kernel's pick). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Poll until `port` accepts a connection; fail when `exited()` or after the timeout. */
async function waitForPort(port: number, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited()) throw new Error("nginx exited");
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch { /* not yet */ }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no answer within ${START_TIMEOUT_MS} ms`);
}
