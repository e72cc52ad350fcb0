/**
 * Remote reading against local reading, on one machine: a 100,000 x 4 KiB
 * container (random bytes, made with the library on tmpfs) served by a
 * loopback nginx (tests/_servers.ts). Prints
 * - requests and bytes received by a cold and a warm `cat` of one file;
 * - `verify` and `extract` time, remote (URL, `--no-cache`: every run pays
 *   for the index) next to local, min/median/max over `--runs` (default 5),
 *   the two sides alternated, and the ratio of the medians (goal: within 2x);
 * - remote `verify` time and requests for each `--max-range` (1, 8, 32 MiB)
 *   and `--connections` (1, 2, 8, 16), over `--table-runs` (default 3).
 *
 * Only the command is timed; clean-up runs outside it, and the extract
 * output folder is on tmpfs too. Needs nginx and -A (for /dev/shm).
 *
 *   deno task bench:remote
 *   deno task bench:remote --runs 3 --table-runs 1
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createContainer } from "../mod.ts";
import {
  benchRoot,
  ctnrCommand,
  fillRandom,
  machine,
  measure,
  median,
  spread,
} from "./_measure.ts";
import { startNginx } from "../tests/_servers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    runs: { type: "string", default: "5" },
    "table-runs": { type: "string", default: "3" },
    entries: { type: "string", default: "100000" },
  },
});
const runs = Number(values.runs);
const tableRuns = Number(values["table-runs"]);
const entries = Number(values.entries);
const ctnr = ctnrCommand();
const MiB = 1 << 20;

const root = await benchRoot();
console.log(machine());
console.log(`bench root ${root} (tmpfs), ${entries} x 4 KiB, times in seconds`);

const served = `${root}/served`;
const container = `${served}/c.ctnr`;
const cache = `${root}/cache`;
const out = `${root}/out`;
const env = { ...Deno.env.toObject(), CTNR_CACHE_DIR: cache };
let stopServer: (() => Promise<void>) | undefined;

try {
  await makeContainer();
  const server = await startNginx(served);
  stopServer = server.stop;
  const url = `${server.url}/c.ctnr`;
  console.log(`container ${(await Deno.stat(container)).size} bytes, served at ${url}\n`);

  await catCounts(url);
  await compare("verify", ["verify", "--container", container], [
    "verify",
    "--container",
    url,
    "--no-cache",
  ]);
  await compare("extract", ["extract", "--container", container, "--outdir", out], [
    "extract",
    "--container",
    url,
    "--outdir",
    out,
    "--no-cache",
  ]);
  await table(url);
} finally {
  await stopServer?.();
  await Deno.remove(root, { recursive: true });
}

/** The source tree (removed once packed) and its container in `served/`. */
async function makeContainer(): Promise<void> {
  const src = `${root}/src`;
  const buf = new Uint8Array(4096);
  const perFolder = 1000;
  for (let d = 0; d * perFolder < entries; d++) {
    await Deno.mkdir(`${src}/d${d}`, { recursive: true });
    for (let f = 0; f < perFolder && d * perFolder + f < entries; f++) {
      fillRandom(buf, d * perFolder + f + 1);
      Deno.writeFileSync(`${src}/d${d}/f${f}.bin`, buf);
    }
  }
  await Deno.mkdir(served);
  const started = performance.now();
  await createContainer(src, container, { finalize: true });
  console.log(
    `packed in ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s (library, finalized: index in the container)`,
  );
  await Deno.remove(src, { recursive: true });
}

/** Run ctnr once, untimed; returns stdout and stderr (throws on failure). */
async function run(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const [cmd, ...rest] = [...ctnr, ...args];
  const result = await new Deno.Command(cmd!, { args: rest, env, stdin: "null" }).output();
  const stdout = new TextDecoder().decode(result.stdout);
  const stderr = new TextDecoder().decode(result.stderr);
  if (!result.success) {
    throw new Error(`ctnr ${args.join(" ")} exited ${result.code}: ${stderr.slice(-500)}`);
  }
  return { stdout, stderr };
}

/** Requests and bytes of a cold `cat` (empty index cache) and a warm one (same cache). */
async function catCounts(url: string): Promise<void> {
  const file = "d1/f7.bin";
  await Deno.remove(cache, { recursive: true }).catch(() => {});
  const local = (await run(["cat", "--container", container, file])).stdout;
  console.log(`cat ${file} (4096 bytes), counters from -v:`);
  for (const side of ["cold", "warm"]) {
    const { stdout, stderr } = await run(["cat", "--container", url, "-v", file]);
    if (stdout !== local) throw new Error(`remote cat (${side}) differs from local`);
    const line = stderr.split("\n").find((l) => l.includes("Remote:"))?.replace(/^ctnr: /, "");
    console.log(`  ${side}: ${line ?? "(no Remote: line)"}`);
  }
  await Deno.remove(cache, { recursive: true }).catch(() => {});
  console.log();
}

function fmt(values: number[]): string {
  const s = spread(values);
  return `${s.median.toFixed(2)} (${s.min.toFixed(2)}-${s.max.toFixed(2)})`;
}

/** Time `local` and `remote` alternately, `runs` times each; clean-up outside the timing. */
async function compare(name: string, local: string[], remote: string[]): Promise<void> {
  const times: Record<"local" | "remote", number[]> = { local: [], remote: [] };
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? (["local", "remote"] as const) : (["remote", "local"] as const);
    for (const side of order) {
      await Deno.remove(out, { recursive: true }).catch(() => {});
      const m = await measure([...ctnr, ...(side === "local" ? local : remote)], undefined, false);
      if (m.code !== 0) throw new Error(`${name} ${side} exited ${m.code}`);
      times[side].push(m.seconds);
    }
  }
  await Deno.remove(out, { recursive: true }).catch(() => {});
  const ratio = median(times.remote) / median(times.local);
  console.log(
    `${name.padEnd(8)} local ${fmt(times.local)}  remote ${fmt(times.remote)}  ` +
      `remote/local ${ratio.toFixed(2)}x ${ratio <= 2 ? "(within 2x)" : "(OVER 2x)"}`,
  );
}

/** Remote verify time and requests for each --max-range x --connections. */
async function table(url: string): Promise<void> {
  console.log(
    `\nremote verify (--no-cache) by --max-range and --connections, median (min-max) of ` +
      `${tableRuns}, requests from --json:`,
  );
  const connections = [1, 2, 8, 16];
  console.log(
    "max-range".padEnd(10) + connections.map((c) => `conn ${c}`.padEnd(26)).join(""),
  );
  for (const maxRange of [1 * MiB, 8 * MiB, 32 * MiB]) {
    let row = `${maxRange / MiB} MiB`.padEnd(10);
    for (const c of connections) {
      const args = [
        "verify",
        "--container",
        url,
        "--no-cache",
        "--max-range",
        String(maxRange),
        "--connections",
        String(c),
      ];
      const { stdout } = await run([...args, "--json"]);
      const requests = JSON.parse(stdout.trim().split("\n").at(-1)!).remote?.requests;
      const times: number[] = [];
      for (let i = 0; i < tableRuns; i++) {
        const m = await measure([...ctnr, ...args], undefined, false);
        if (m.code !== 0) throw new Error(`verify ${args.join(" ")} exited ${m.code}`);
        times.push(m.seconds);
      }
      row += `${fmt(times)} ${requests} req`.padEnd(26);
    }
    console.log(row);
  }
}
