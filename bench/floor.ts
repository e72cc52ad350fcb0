/**
 * Deno's per-file floor for ctnr's small-file job, with no ctnr code, beside GNU tar's time for
 * the same tree: 100,000 files of 4 KiB in 100 folders on tmpfs.
 *
 * - create floor: per file lstat, open, read, close and SHA-256 (the least create must do: it
 *   checks the kind before opening, reads the bytes and hashes them), with the fastest calls
 *   found: `Deno.lstatSync`, `node:fs` `openSync`/`readSync`/`closeSync` into one reused buffer,
 *   `node:crypto` `createHash("sha256")`; also `Deno.readFileSync` (open, fstat, read, close in
 *   one call) and the same split over two workers (a folder each in turn: the best two cores
 *   could do, before writing anything).
 * - extract floor: per file open(O_CREAT | O_EXCL) of a temp name, write 4 KiB, futimens, close,
 *   rename (what ctnr does for each file, no hashing), on one thread and on two workers (a
 *   folder each), and `Deno.writeFileSync` + rename (fewer calls).
 * - each op alone in a loop over the same files, so its cost per file shows.
 *
 * Rounds alternate the floors and tar; prints min/median/max seconds and microseconds per file.
 *
 *   deno run -A bench/floor.ts [--runs 3]
 *
 * @module
 */

import { closeSync, constants, openSync, readSync } from "node:fs";
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import process from "node:process";
import { benchRoot, fillRandom, loadAverage, machine, measure, spread } from "./_measure.ts";

const FOLDERS = 100;
const PER_FOLDER = 1000;
const FILES = FOLDERS * PER_FOLDER;
const paths = (src: string, folders: number[]) =>
  folders.flatMap((d) => Array.from({ length: PER_FOLDER }, (_, f) => `${src}/d${d}/f${f}.bin`));

/** Read and hash every file of `folders` of `src` (lstat, open, read, close, SHA-256). */
function readAndHash(src: string, folders: number[]): number {
  const buffer = new Uint8Array(4097);
  let n = 0;
  for (const path of paths(src, folders)) {
    Deno.lstatSync(path);
    const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const got = readSync(fd, buffer, 0, 4097, null);
    closeSync(fd);
    createHash("sha256").update(buffer.subarray(0, got)).digest("hex");
    n++;
  }
  return n;
}

/** Write every file of `folders` into `out` through a temp name (open, write, futimens, close, rename). */
function writeAndRename(out: string, folders: number[], payload: Uint8Array): number {
  let n = 0;
  for (const d of folders) {
    Deno.mkdirSync(`${out}/d${d}`, { recursive: true });
    for (let f = 0; f < PER_FOLDER; f++) {
      const target = `${out}/d${d}/f${f}.bin`;
      const tmp = `${out}/d${d}/.f${f}.bin.tmp`;
      const file = Deno.openSync(tmp, { write: true, createNew: true, mode: 0o644 });
      file.writeSync(payload);
      file.utimeSync(1_700_000_000, 1_700_000_000);
      file.close();
      Deno.renameSync(tmp, target);
      n++;
    }
  }
  return n;
}

// This file is also the two workers' module (`import.meta.main` is true in a worker too).
const inWorker = "WorkerGlobalScope" in globalThis;

// A worker runs one job for the folders it is given and reports when done.
if (inWorker) {
  const scope = self as unknown as Worker;
  scope.onmessage = (event: MessageEvent) => {
    const { job, src, out, folders } = event.data;
    const n = job === "read"
      ? readAndHash(src, folders)
      : writeAndRename(out, folders, new Uint8Array(4096).fill(7));
    scope.postMessage(n);
  };
}

if (!inWorker) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { runs: { type: "string", default: "3" } },
  });
  const runs = Number(values.runs);
  const root = await benchRoot();
  try {
    await main(root, runs);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

/** Wall and CPU seconds of a measured command. */
function cpuOf(m: { seconds: number; cpuSeconds: number }): [number, number] {
  return [m.seconds, m.cpuSeconds];
}

async function main(root: string, runs: number): Promise<void> {
  console.log(machine());
  const src = `${root}/src`;
  const buf = new Uint8Array(4096);
  for (let d = 0; d < FOLDERS; d++) {
    Deno.mkdirSync(`${src}/d${d}`, { recursive: true });
    for (let f = 0; f < PER_FOLDER; f++) {
      fillRandom(buf, d * 1000 + f + 1);
      Deno.writeFileSync(`${src}/d${d}/f${f}.bin`, buf);
    }
  }
  const all = Array.from({ length: FOLDERS }, (_, d) => d);
  const list = paths(src, all);
  const tar = `${root}/s.tar`;
  await measure(["tar", "-cf", tar, "-C", src, "."], undefined, false);
  const payload = new Uint8Array(4096).fill(7);
  const out = `${root}/out`;
  const clean = () => Deno.removeSync(out, { recursive: true });

  const twoWorkers = async (job: string) => {
    const workers = [0, 1].map(() => new Worker(import.meta.url, { type: "module" }));
    // the workers' start-up (about 40 ms) is left out: ctnr hides it behind its first files
    await new Promise((r) => setTimeout(r, 100));
    const cpu = process.cpuUsage();
    const start = performance.now();
    await Promise.all(workers.map((w, i) =>
      new Promise((resolve) => {
        w.onmessage = resolve;
        w.postMessage({ job, src, out, folders: all.filter((d) => d % 2 === i) });
      })
    ));
    const seconds = (performance.now() - start) / 1000;
    const used = process.cpuUsage(cpu);
    workers.forEach((w) => w.terminate());
    return [seconds, (used.user + used.system) / 1e6] as [number, number];
  };
  const timed = (fn: () => unknown): [number, number] => {
    const cpu = process.cpuUsage();
    const start = performance.now();
    fn();
    const used = process.cpuUsage(cpu);
    return [(performance.now() - start) / 1000, (used.user + used.system) / 1e6];
  };

  /** name -> [run, prepare] */
  const cases: [string, () => Promise<[number, number]> | [number, number], (() => void)?][] = [
    [
      "tar -cf (whole command)",
      async () =>
        cpuOf(await measure(["tar", "-cf", `${root}/t.tar`, "-C", src, "."], undefined, false)),
      () => Deno.removeSync(`${root}/t.tar`),
    ],
    ["create floor: lstat+open+read+close+SHA-256", () => timed(() => readAndHash(src, all))],
    ["create floor, 2 workers", () => twoWorkers("read")],
    ["  Deno.lstatSync alone", () => timed(() => list.forEach((p) => Deno.lstatSync(p)))],
    [
      "  open+close alone (node:fs)",
      () => timed(() => list.forEach((p) => closeSync(openSync(p, constants.O_RDONLY)))),
    ],
    ["  open+read+close (node:fs)", () =>
      timed(() =>
        list.forEach((p) => {
          const fd = openSync(p, constants.O_RDONLY);
          readSync(fd, buf, 0, 4096, null);
          closeSync(fd);
        })
      )],
    ["  Deno.readFileSync (1 call)", () => timed(() => list.forEach((p) => Deno.readFileSync(p)))],
    [
      "  SHA-256 of 4 KiB alone (node:crypto)",
      () => timed(() => list.forEach(() => createHash("sha256").update(buf).digest("hex"))),
    ],
    [
      "tar -xf (whole command)",
      async () => cpuOf(await measure(["tar", "-xf", tar, "-C", out], undefined, false)),
      () => Deno.mkdirSync(out),
    ],
    [
      "extract floor: open+write+futimens+close+rename",
      () => timed(() => writeAndRename(out, all, payload)),
    ],
    ["extract floor, 2 workers", () => twoWorkers("write")],
    ["  writeFileSync+rename, no futimens", () =>
      timed(() => {
        for (const d of all) {
          Deno.mkdirSync(`${out}/d${d}`, { recursive: true });
          for (let f = 0; f < PER_FOLDER; f++) {
            Deno.writeFileSync(`${out}/d${d}/.f${f}.tmp`, payload);
            Deno.renameSync(`${out}/d${d}/.f${f}.tmp`, `${out}/d${d}/f${f}.bin`);
          }
        }
      })],
    ["  open(O_CREAT)+close alone", () =>
      timed(() => {
        for (const d of all) {
          Deno.mkdirSync(`${out}/d${d}`, { recursive: true });
          for (let f = 0; f < PER_FOLDER; f++) {
            Deno.openSync(`${out}/d${d}/f${f}.bin`, { write: true, createNew: true }).close();
          }
        }
      })],
  ];
  const seconds = cases.map(() => [] as number[]);
  const cpus = cases.map(() => [] as number[]);
  const load = loadAverage();
  for (let run = 0; run < runs; run++) {
    for (let i = 0; i < cases.length; i++) {
      const [name, fn, prepare] = cases[i]!;
      try {
        clean();
      } catch { /* none yet */ }
      if (prepare && !name.startsWith("tar -cf")) prepare();
      const [wall, cpu] = await fn();
      seconds[i]!.push(wall);
      cpus[i]!.push(cpu);
      if (prepare && name.startsWith("tar -cf")) prepare();
    }
  }
  console.log(
    `floor.ts: 100,000 x 4 KiB in 100 folders, ${runs} runs alternated (load ${load} -> ${loadAverage()})`,
  );
  console.log(`  ${"".padEnd(50)} min/median/max s   us/file  cpu us/file (medians)`);
  cases.forEach(([name], i) => {
    const s = spread(seconds[i]!);
    console.log(
      `  ${name.padEnd(50)} ${s.min.toFixed(2)}/${s.median.toFixed(2)}/${s.max.toFixed(2)}` +
        `     ${(s.median / FILES * 1e6).toFixed(1).padStart(5)}` +
        `   ${(spread(cpus[i]!).median / FILES * 1e6).toFixed(1).padStart(5)}`,
    );
  });
}
