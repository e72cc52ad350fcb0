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
  /** CPU time (user + system) of the command and the children it waited for, in seconds (NaN without /usr/bin/time). */
  cpuSeconds: number;
}

let timeTool: boolean | undefined;
/** Whether GNU time is at /usr/bin/time (Debian: apt-get install time). */
function hasTimeTool(): boolean {
  if (timeTool === undefined) {
    try {
      timeTool = Deno.statSync("/usr/bin/time").isFile;
    } catch {
      timeTool = false;
    }
  }
  return timeTool;
}

/**
 * Run `argv` and measure it: the clock starts just before the spawn and stops when the child
 * exits, so only the command is timed. An array is spawned directly; a string runs through
 * `bash -c` (for pipelines only: preparation and clean-up belong outside, in the caller).
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
  const inner = typeof argv === "string" ? ["bash", "-c", argv] : argv;
  // GNU time (a fork and exec, about 1 ms) reports the CPU time, which the machine's load
  // stretches less than the wall time.
  const cpu = hasTimeTool();
  const [cmd, ...args] = cpu ? ["/usr/bin/time", "-f", "ctnr-bench-cpu %U %S", ...inner] : inner;
  const command = new Deno.Command(cmd!, {
    args,
    stdout: "null",
    stderr: "piped",
    ...(cwd ? { cwd } : {}),
  });
  const start = performance.now();
  const child = command.spawn();
  let peak = 0;
  let running = sampleRss;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, await peakOf(child.pid));
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const [status, stderr] = await Promise.all([child.status, new Response(child.stderr).text()]);
  const seconds = (performance.now() - start) / 1000;
  running = false;
  await sampler;
  if (!status.success) {
    console.error(`  ! ${[cmd, ...args].join(" ")} exited ${status.code}: ${stderr.slice(-500)}`);
  }
  const times = /ctnr-bench-cpu ([\d.]+) ([\d.]+)\s*$/.exec(stderr);
  const cpuSeconds = times ? Number(times[1]) + Number(times[2]) : NaN;
  return { seconds, peakMiB: peak / 1024, code: status.code, cpuSeconds };
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

/** Words of {@link writeTextTree}'s text. */
const WORDS = [
  "container",
  "payload",
  "index",
  "entry",
  "offset",
  "trailer",
  "gzip",
  "sha256",
  "folder",
  "relpath",
  "extract",
  "create",
  "resume",
  "fsync",
  "batch",
  "tree",
];

/**
 * The gzip cases' tree: 20,000 text files of 1-16 KiB (words and line breaks, the same bytes
 * every time) in 20 folders of 1,000.
 *
 * @param src the folder to make
 * @returns the bytes written
 */
export async function writeTextTree(src: string): Promise<number> {
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  let bytes = 0;
  for (let d = 0; d < 20; d++) {
    await Deno.mkdir(`${src}/d${d}`, { recursive: true });
    for (let f = 0; f < 1000; f++) {
      const size = 1024 + Math.floor(rand() * 15 * 1024);
      let text = "";
      while (text.length < size) {
        text += WORDS[Math.floor(rand() * WORDS.length)] + (rand() < 0.1 ? "\n" : " ");
      }
      Deno.writeTextFileSync(`${src}/d${d}/f${f}.txt`, text.slice(0, size));
      bytes += size;
    }
  }
  return bytes;
}

/** min, median and max of numbers. */
export function spread(values: number[]): { min: number; median: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  return { min: sorted[0]!, median: median(sorted), max: sorted.at(-1)! };
}

/** The machine, one line: cores, CPU model, kernel, Deno version, load average. */
export function machine(): string {
  const read = (path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return "";
    }
  };
  const model = /model name\s*:\s*(.*)/.exec(read("/proc/cpuinfo"))?.[1] ?? "unknown CPU";
  const kernel = read("/proc/sys/kernel/osrelease").trim() || Deno.build.os;
  return `machine: ${navigator.hardwareConcurrency} cores, ${model}, kernel ${kernel}, ` +
    `Deno ${Deno.version.deno}, load average ${loadAverage()}`;
}

/** The 1, 5 and 15 minute load averages of /proc/loadavg ("?" where it is not there). */
export function loadAverage(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "?";
  }
}

/** One side of a comparison: the command and what must happen, untimed, before each run. */
export interface Side {
  label: string;
  /** spawned directly; a string runs through `bash -c` (pipes, redirections) */
  argv: string[] | string;
  /** paths removed before each run */
  remove?: string[];
  /** folder made (empty) before each run */
  mkdir?: string;
  /** the tools it needs (skipped with a note when one is missing) */
  needs?: string[];
}

/** {@link hasTool}'s answers. */
const present = new Map<string, boolean>();

/**
 * Whether `tool` is on PATH (asked once).
 *
 * @param tool a command name
 * @returns `true` when `command -v` finds it
 */
export function hasTool(tool: string): boolean {
  if (!present.has(tool)) {
    const found = new Deno.Command("bash", { args: ["-c", `command -v ${tool}`], stdout: "null" })
      .outputSync().success;
    present.set(tool, found);
  }
  return present.get(tool)!;
}

/** Options of {@link compareSides}. */
export interface CompareOptions {
  /** runs of each side */
  runs: number;
  /** sample each command's peak RSS (costs some CPU beside it) @default false */
  sampleRss?: boolean;
  /**
   * The side the ratios compare with: `first` (ctnr, then its references: each reference's row
   * says ctnr's median over its own) or `last` (the reference last: each other row says its own
   * median over the reference's). @default "first"
   */
  ratioTo?: "first" | "last";
}

/**
 * Run `sides` in turn, `runs` times, the order rotated each run, only the command timed
 * (removals, the folder and a `sync` before the clock); print min/median/max wall seconds, the
 * median CPU seconds and the ratio of the medians for each side. A side whose tool is missing is
 * skipped with a note.
 *
 * @param title the heading printed
 * @param sides the commands
 * @param options runs, RSS sampling, the side the ratios compare with
 * @returns each usable side's measurements, in the order of `sides` without the skipped ones
 */
export async function compareSides(
  title: string,
  sides: Side[],
  { runs, sampleRss = false, ratioTo = "first" }: CompareOptions,
): Promise<Measured[][]> {
  const usable = sides.filter((side) => {
    const missing = (side.needs ?? []).filter((tool) => !hasTool(tool));
    if (missing.length) {
      console.log(`  (${side.label}: skipped, ${missing.join(", ")} not installed; see README)`);
    }
    return missing.length === 0;
  });
  const results = usable.map(() => [] as Measured[]);
  const loadBefore = loadAverage();
  for (let run = 0; run < runs; run++) {
    for (let k = 0; k < usable.length; k++) {
      const i = (run + k) % usable.length;
      const side = usable[i]!;
      for (const path of side.remove ?? []) {
        await Deno.remove(path, { recursive: true }).catch(() => {});
      }
      if (side.mkdir) await Deno.mkdir(side.mkdir, { recursive: true });
      await new Deno.Command("sync").output();
      results[i]!.push(await measure(side.argv, undefined, sampleRss));
    }
  }
  console.log(`${title}  (load ${loadBefore} -> ${loadAverage()})`);
  const wall = (i: number) => spread(results[i]!.map((m) => m.seconds)).median;
  const cpu = (i: number) => spread(results[i]!.map((m) => m.cpuSeconds)).median;
  const ref = ratioTo === "first" ? 0 : usable.length - 1;
  usable.forEach((side, i) => {
    const s = spread(results[i]!.map((m) => m.seconds));
    const range = `${s.min.toFixed(2)}/${s.median.toFixed(2)}/${s.max.toFixed(2)} s`;
    // Always ctnr (or the side under test) over the reference.
    const [num, den] = ratioTo === "first" ? [ref, i] : [i, ref];
    const ratio = i === ref
      ? ""
      : `  ratio ${(wall(num) / wall(den)).toFixed(2)} (cpu ${(cpu(num) / cpu(den)).toFixed(2)})`;
    const p = spread(results[i]!.map((m) => m.peakMiB));
    const rss = sampleRss
      ? `  peak RSS ${p.min.toFixed(0)}/${p.median.toFixed(0)}/${p.max.toFixed(0)} MiB`
      : "";
    console.log(
      `  ${side.label.padEnd(44)} ${range.padStart(18)}  cpu ${cpu(i).toFixed(2)} s${ratio}${rss}`,
    );
  });
  return results;
}
