/**
 * Helpers for the benchmarks: run a command, time it, and sample its peak
 * resident set size from /proc/<pid>/status (VmHWM) while it runs.
 *
 * @module
 */

/** One measured run. */
export interface Measured {
  /** Wall time in seconds. */
  seconds: number;
  /** Peak RSS in MiB (0 where /proc is not there). */
  peakMiB: number;
  /** Exit code. */
  code: number;
}

/**
 * Run `argv` (through `bash -c` when it is a string) and measure it.
 *
 * @param argv the command
 * @param cwd its working folder
 * @param sampleRss poll its peak RSS every 5 ms (costs some CPU beside it; off: `peakMiB` is 0)
 */
export async function measure(
  argv: string[] | string,
  cwd?: string,
  sampleRss = true,
): Promise<Measured> {
  const [cmd, ...args] = typeof argv === "string" ? ["bash", "-c", argv] : argv;
  const start = performance.now();
  const child = new Deno.Command(cmd!, {
    args,
    stdout: "null",
    stderr: "piped",
    ...(cwd ? { cwd } : {}),
  }).spawn();
  let peak = 0;
  let running = sampleRss;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, await peakOf(child.pid));
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
  running = false;
  await sampler;
  const seconds = (performance.now() - start) / 1000;
  if (!status.success) {
    console.error(`  ! ${[cmd, ...args].join(" ")} exited ${status.code}: ${stderr.slice(-500)}`);
  }
  return { seconds, peakMiB: peak / 1024, code: status.code };
}

/** VmHWM of a process and its children (the deepest bash -c child counts), in KiB. */
async function peakOf(pid: number): Promise<number> {
  let best = 0;
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const m = /VmHWM:\s+(\d+)/.exec(status);
    if (m) best = Number(m[1]);
    const children = await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`).catch(() => "");
    for (const c of children.trim().split(/\s+/).filter(Boolean)) {
      best = Math.max(best, await peakOf(Number(c)));
    }
  } catch { /* exited */ }
  return best;
}

/** Median of numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** A folder for benchmark trees: tmpfs (/dev/shm) when present, since disk timings swing 10-fold. */
export async function benchRoot(): Promise<string> {
  let base: string | undefined;
  try {
    if ((await Deno.stat("/dev/shm")).isDirectory) base = "/dev/shm";
  } catch (error) {
    // Deno asks for --allow-all to touch /dev: without it the bench would silently run on disk.
    if (error instanceof Deno.errors.NotCapable) {
      throw new Error(
        "bench: run with --allow-all (/dev/shm needs it); disk timings swing 10-fold",
      );
    }
  }
  if (base === undefined) console.log("bench: no /dev/shm here, timing on disk");
  return await Deno.makeTempDir({ prefix: "ctnr-bench-", ...(base ? { dir: base } : {}) });
}

/** Deterministic pseudo-random bytes (xorshift32), fast enough for gigabytes. */
export function fillRandom(bytes: Uint8Array, seed: number): void {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
  let x = seed | 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  for (let i = words.length * 4; i < bytes.length; i++) bytes[i] = i & 0xff;
}

/** Command prefix that runs the ctnr CLI of this checkout. */
export function ctnrCommand(): string[] {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  return [Deno.execPath(), "run", "--allow-all", cli];
}

/**
 * A tree of `entries` files of 16 bytes, 1,000 to a folder (`d0/f0.txt` ...): the million-entry
 * benchmarks' source.
 *
 * @param src the folder to fill (made when missing)
 * @param entries how many files
 * @param perFolder files in each folder (`entries` or more: one folder, `d0`)
 */
export function writeSmallTree(src: string, entries: number, perFolder = 1000): void {
  for (let d = 0; d * perFolder < entries; d++) {
    Deno.mkdirSync(`${src}/d${d}`, { recursive: true });
    for (let f = 0; f < perFolder && d * perFolder + f < entries; f++) {
      Deno.writeTextFileSync(`${src}/d${d}/f${f}.txt`, `file ${d}/${f}\n`.padEnd(16, "."));
    }
  }
}
