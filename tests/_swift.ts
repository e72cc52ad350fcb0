/**
 * A real S3 API for the tests: OpenStack Swift (Debian's `swift-proxy`, `swift-account`,
 * `swift-container`, `swift-object`) with its `s3api` middleware and `tempauth`, configured
 * entirely in a temp folder: one replica, one device folder for each ring, every server on
 * 127.0.0.1 at a free port, run as children in the foreground. `.ci/run` installs the packages.
 *
 * The access key is tempauth's `test:tester`, the secret `testing`; requests are path-style
 * (`endpoint/bucket/key`), signed with SigV4 for `us-east-1`. The proxy's pipeline has no
 * `cache` middleware (no memcached): S3 requests are authenticated by s3api and tempauth without
 * it. Logs go to syslog's UDP port on 127.0.0.1 (there is no /dev/log here), so nowhere.
 *
 * @module
 */

// A full specifier, as lib/remote/s3.ts has it (README "Runtime dependencies").
// deno-lint-ignore no-import-prefix
import { AwsClient } from "npm:aws4fetch@1.0.20";
import { freePort } from "./_servers.ts";

/** A running Swift, from {@link startSwift}. */
export interface Swift {
  /** The proxy's URL, `http://127.0.0.1:PORT`. */
  endpoint: string;
  /** The region s3api signs for. */
  region: string;
  /** tempauth's `account:user`. */
  accessKeyId: string;
  /** tempauth's key. */
  secretAccessKey: string;
  /** Create a bucket (PUT, 200). */
  createBucket(name: string): Promise<void>;
  /** Store an object (PUT, 200); returns its ETag as Swift sends it (quoted MD5). */
  putObject(bucket: string, key: string, bytes: Uint8Array): Promise<string>;
  /** Stop the servers and remove the folder. */
  stop(): Promise<void>;
}

/** One of Swift's servers, running: its stderr's last text once it exits. */
interface Server {
  name: string;
  child: Deno.ChildProcess;
  stderr: Promise<string>;
}

const PYTHON = "/usr/bin/python3";
const SERVERS = ["account", "container", "object", "proxy"] as const;

/** Whether Swift's servers are installed (for `ignore:`). */
export function swiftAvailable(): boolean {
  try {
    return SERVERS.every((name) => Deno.statSync(`/usr/bin/swift-${name}-server`).isFile) &&
      Deno.statSync(PYTHON).isFile;
  } catch {
    return false;
  }
}

/**
 * Start Swift in a new temp folder and wait until the S3 API answers.
 *
 * @throws {Error} when the folder's file system has no user xattrs (Swift's object server needs
 *   them), or a server exits or does not answer within 30 seconds (with its stderr)
 */
export async function startSwift(): Promise<Swift> {
  const dir = await Deno.makeTempDir({ prefix: "ctnr-swift-" });
  const children: Server[] = [];
  const stop = async () => {
    for (const { child } of children) {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    }
    for (const { child, stderr } of children) {
      await child.status;
      await stderr;
    }
    await Deno.remove(dir, { recursive: true });
  };
  try {
    const ports = Object.fromEntries(SERVERS.map((name) => [name, freePort()])) as Record<
      (typeof SERVERS)[number],
      number
    >;
    await writeConfig(dir, ports);
    const built = await new Deno.Command(PYTHON, {
      args: ["-c", BUILD_RINGS, dir, ...[ports.account, ports.container, ports.object].map(String)],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!built.success) {
      throw new Error(`Swift's rings: ${new TextDecoder().decode(built.stderr).trim()}`);
    }
    for (const name of SERVERS) {
      const child = new Deno.Command(`/usr/bin/swift-${name}-server`, {
        args: [`${dir}/${name}-server.conf`],
        env: { PYTHONPATH: dir },
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      children.push({ name, child, stderr: lastText(child.stderr) });
    }
    const swift: Swift = {
      endpoint: `http://127.0.0.1:${ports.proxy}`,
      region: "us-east-1",
      accessKeyId: "test:tester",
      secretAccessKey: "testing",
      createBucket: async (name) => {
        const response = await client.fetch(`${swift.endpoint}/${name}`, { method: "PUT" });
        const body = await response.text();
        if (response.status !== 200) {
          throw new Error(`PUT bucket ${name}: ${response.status} ${body}`);
        }
      },
      putObject: async (bucket, key, bytes) => {
        const path = key.split("/").map(encodeURIComponent).join("/");
        const response = await client.fetch(`${swift.endpoint}/${bucket}/${path}`, {
          method: "PUT",
          body: new Uint8Array(bytes), // on an ArrayBuffer, as BodyInit wants
        });
        const body = await response.text();
        if (response.status !== 200) {
          throw new Error(`PUT ${bucket}/${key}: ${response.status} ${body}`);
        }
        return response.headers.get("etag") ?? "";
      },
      stop,
    };
    const client = new AwsClient({
      accessKeyId: swift.accessKeyId,
      secretAccessKey: swift.secretAccessKey,
      service: "s3",
      region: swift.region,
      retries: 0,
    });
    await waitReady(swift, children, client, Object.values(ports));
    return swift;
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Wait until the four servers listen and the account server answers through the S3 API. */
async function waitReady(
  swift: Swift,
  children: Server[],
  client: AwsClient,
  ports: number[],
): Promise<void> {
  const exited = Promise.race(
    children.map(({ name, child, stderr }) =>
      child.status.then(async (status) => ({ name, status, stderr: await stderr }))
    ),
  );
  const deadline = Date.now() + 30_000;
  let last = "";
  while (Date.now() < deadline) {
    const done = await Promise.race([exited, delay(50).then(() => undefined)]);
    if (done) {
      throw new Error(`swift-${done.name}-server exited (${done.status.code}): ${done.stderr}`);
    }
    try {
      // Every server listening first: the proxy shuns a node that refused a connection for a
      // minute (its error limiting), so a PUT to an object server not yet up fails with 503.
      for (const port of ports) (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      // A listing of all buckets reaches the proxy, tempauth, s3api and the account server.
      const response = await client.fetch(`${swift.endpoint}/`);
      last = `${response.status} ${await response.text()}`;
      if (response.status === 200) return;
    } catch (error) {
      last = String(error); // not listening yet
    }
  }
  throw new Error(`Swift did not answer in 30 s: ${last}`);
}

/** Write swift.conf and the four servers' configuration files into `dir`. */
async function writeConfig(dir: string, ports: Record<string, number>): Promise<void> {
  const common = (port: number) =>
    `[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = ${port}\nswift_dir = ${dir}\n` +
    `devices = ${dir}/devices\nmount_check = false\nworkers = 0\nlog_level = WARNING\n` +
    `log_udp_host = 127.0.0.1\n`;
  const storage = (name: string) =>
    `${
      common(ports[name]!)
    }\n[pipeline:main]\npipeline = ${name}-server\n\n[app:${name}-server]\nuse = egg:swift#${name}\n`;
  await Deno.mkdir(`${dir}/devices/d1`, { recursive: true });
  await Deno.writeTextFile(`${dir}/ctnr_swift_cache.py`, MEMORY_CACHE);
  await Deno.writeTextFile(
    `${dir}/swift.conf`,
    "[swift-hash]\nswift_hash_path_suffix = ctnr-tests\nswift_hash_path_prefix = ctnr\n\n" +
      "[storage-policy:0]\nname = Policy-0\ndefault = yes\n",
  );
  for (const name of ["account", "container", "object"]) {
    await Deno.writeTextFile(`${dir}/${name}-server.conf`, storage(name));
  }
  await Deno.writeTextFile(
    `${dir}/proxy-server.conf`,
    `${common(ports.proxy!)}
[pipeline:main]
pipeline = catch_errors proxy-logging cache s3api tempauth proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:cache]
paste.filter_factory = ctnr_swift_cache:filter_factory

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
`,
  );
}

/**
 * The proxy's `swift.cache` as a dictionary in its process, in place of the `cache` middleware
 * and a memcached: tempauth keeps its groups there (it answers 500 "Memcache required" without
 * one). Only what tempauth and the proxy call: get, set, incr, decr, delete.
 */
const MEMORY_CACHE = `
class MemoryCache(dict):
    def __bool__(self):  # tempauth asks "if not cache": an empty dict would be none
        return True

    def get(self, key, raise_on_error=False):
        return dict.get(self, key)

    def set(self, key, value, serialize=True, time=0, min_compress_len=0, raise_on_error=False):
        self[key] = value

    def incr(self, key, delta=1, time=0):
        self[key] = int(dict.get(self, key) or 0) + delta
        return self[key]

    def decr(self, key, delta=1, time=0):
        return self.incr(key, -delta, time)

    def delete(self, key, server_key=None):
        self.pop(key, None)


def filter_factory(global_conf, **local_conf):
    cache = MemoryCache()

    def make(app):
        def middleware(env, start_response):
            env["swift.cache"] = cache
            return app(env, start_response)
        return middleware
    return make
`;

/**
 * Build the account, container and object rings (one replica, one device `d1` on 127.0.0.1 at
 * the given ports) with Swift's RingBuilder, in one Python process: the same rings as three
 * `swift-ring-builder` create/add/rebalance runs, in 0.4 s instead of 3.6 s. Then check that
 * the devices folder takes user xattrs, which the object server stores its metadata in.
 */
const BUILD_RINGS = `
import os, sys
from swift.common.ring import RingBuilder
folder = sys.argv[1]
for name, port in zip(("account", "container", "object"), sys.argv[2:5]):
    builder = RingBuilder(1, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
                     "device": "d1", "weight": 1})
    builder.rebalance()
    builder.get_ring().save(os.path.join(folder, name + ".ring.gz"))
probe = os.path.join(folder, "devices", "d1", "xattr-probe")
open(probe, "w").close()
try:
    os.setxattr(probe, "user.swift.probe", b"1")
except OSError as error:
    sys.exit("the temp folder's file system has no user xattrs, which Swift needs: %s" % error)
os.remove(probe)
`;

/** Read a stream to its end, keeping its last 4,000 characters (a server's stderr). */
async function lastText(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    text = (text + chunk).slice(-4000);
  }
  return text.trim();
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
