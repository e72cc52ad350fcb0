/**
 * Shared by the crash tests: a seeded random source, the trees they build,
 * a tolerant reader of indexes as a crash leaves them, and the checks every
 * crash scenario must pass (committed entries intact, a strict layout, every
 * entry verifying and extracting to the source).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { dirname } from "node:path";
import {
  ContainerReader,
  type CreateOptions,
  extractContainer,
  findTrailer,
  type IndexEntry,
  IndexReader,
  TRAILER_MAGIC,
  type TrailerLocation,
} from "../mod.ts";
import { FOOTER_SIZE, TRAILER_HEADER_SIZE } from "../lib/format/trailer.ts";
import { diffTrees, exists, memorySource } from "./_helpers.ts";

/** Path of the CLI. */
export const CLI = new URL("../cli.ts", import.meta.url).pathname;
/** The project folder. */
export const PROJECT = dirname(CLI);
/** The seed of this run: `CTNR_CRASH_SEED`, else random. */
export const SEED = seedFromEnv();

/** Cut the container and its index at random offsets, often at the nastiest ones. */
export async function cutAtRandom(container: string, random: Random): Promise<string> {
  const index = await Deno.readFile(`${container}.idx`);
  const newlines: number[] = [];
  for (let i = index.indexOf(0x0a); i >= 0; i = index.indexOf(0x0a, i + 1)) newlines.push(i);
  const [indexHow, indexAt] = random.weighted<[string, () => number]>([
    [4, ["anywhere", () => random.int(index.length + 1)]],
    [2, ["just before a newline", () => newlines.length ? random.pick(newlines) : 0]],
    [2, ["just after a newline", () => newlines.length ? random.pick(newlines) + 1 : 0]],
    [1, ["not at all", () => index.length]],
    [1, ["to nothing", () => 0]],
  ]);
  const indexCut = [indexHow, indexAt()] as const;
  const bytes = await Deno.readFile(container);
  let trailer: TrailerLocation | null = null;
  try {
    trailer = await findTrailer(memorySource(bytes));
  } catch { /* a torn trailer */ }
  const ends = parseIndex(index).list.map((e) => e.offset + e.payloadSize);
  const [containerHow, containerAt] = random.weighted<[string, () => number]>([
    [4, ["anywhere", () => random.int(bytes.length + 1)]],
    [2, ["at a payload end", () => ends.length ? random.pick(ends) : 0]],
    [1, ["not at all", () => bytes.length]],
    [2, [
      "inside the trailer",
      () =>
        trailer
          ? trailer.trailerOffset + random.int(bytes.length - trailer.trailerOffset)
          : random.int(bytes.length + 1),
    ]],
  ]);
  const containerCut = [containerHow, containerAt()] as const;
  await Deno.truncate(`${container}.idx`, indexCut[1]);
  await Deno.truncate(container, containerCut[1]);
  return `index cut ${indexCut[0]} (byte ${indexCut[1]} of ${index.length}), ` +
    `container cut ${containerCut[0]} (byte ${containerCut[1]} of ${bytes.length})`;
}

export function randomOptions(random: Random, compress: boolean): CreateOptions {
  const fsyncEvery = random.range(1, 20);
  const finalize = random.chance(0.4);
  return {
    compress,
    fsyncEvery,
    indexBatch: random.range(fsyncEvery, 20),
    chunkSize: random.pick([64 << 10, 1 << 20]),
    finalize,
    removeIndexOnFinalize: finalize && random.chance(0.2),
  };
}

export function describeOptions(options: CreateOptions): string {
  return `fsyncEvery ${options.fsyncEvery}, indexBatch ${options.indexBatch}, ` +
    `chunkSize ${options.chunkSize}, compress ${options.compress}` +
    (options.finalize ? ", finalize" : "") +
    (options.removeIndexOnFinalize ? ", removeIndexOnFinalize" : "");
}

// ---------------------------------------------------------------------------
// Checks

/**
 * Problems with the container's layout: its index (the `.idx`, else the
 * trailer) must parse strictly, name each relpath once, and end where the
 * payloads end; with a trailer, exactly one trailer stands right after the
 * payloads and embeds the same index; without, nothing follows them.
 */
export async function checkLayout(container: string, expectTrailer: boolean): Promise<string[]> {
  const problems: string[] = [];
  const bytes = await Deno.readFile(container);
  const indexFile = await exists(`${container}.idx`)
    ? await Deno.readFile(`${container}.idx`)
    : undefined;
  let trailer: TrailerLocation | null = null;
  try {
    trailer = await findTrailer(memorySource(bytes));
  } catch (error) {
    problems.push(`bad trailer: ${describeError(error)}`);
  }
  const embedded = trailer
    ? bytes.subarray(trailer.indexOffset, trailer.indexOffset + trailer.indexLength)
    : undefined;
  const index = indexFile ?? embedded;
  if (index === undefined) return [...problems, "neither an index file nor a trailer"];
  const relpaths = new Set<string>();
  let end = 0;
  try {
    for await (const { entry } of new IndexReader(memorySource(index)).records()) {
      if (relpaths.has(entry.relpath)) problems.push(`duplicate relpath "${entry.relpath}"`);
      relpaths.add(entry.relpath);
      end = Math.max(end, entry.offset + entry.payloadSize);
    }
  } catch (error) {
    return [...problems, `bad index: ${describeError(error)}`];
  }
  const magics = occurrences(bytes, TRAILER_MAGIC);
  if (expectTrailer) {
    if (trailer === null) problems.push("no trailer");
    else if (trailer.trailerOffset !== end) {
      problems.push(`the trailer starts at byte ${trailer.trailerOffset}, payloads end at ${end}`);
    }
    if (indexFile && embedded && !equalBytes(indexFile, embedded)) {
      problems.push("the embedded index differs from the index file");
    }
    if (magics !== 1) problems.push(`${magics} trailer headers in the container, expected 1`);
  } else if (bytes.length !== end) {
    problems.push(`the container has ${bytes.length} bytes, its payloads end at byte ${end}`);
  }
  return problems;
}

/** Problems found reading every entry (each stream verifies its SHA-256) and extracting. */
export async function checkEntries(container: string, src: string, out: string): Promise<string[]> {
  const problems: string[] = [];
  let reader: ContainerReader;
  try {
    reader = await ContainerReader.open(container);
  } catch (error) {
    return [`cannot open: ${describeError(error)}`];
  }
  try {
    for await (const entry of reader.entries()) {
      if (entry.entryType !== "file") continue;
      try {
        for await (const _ of reader.open(entry)) { /* the stream checks the SHA-256 at its end */ }
      } catch (error) {
        problems.push(`entry "${entry.relpath}": ${describeError(error)}`);
      }
    }
  } catch (error) {
    problems.push(`bad index: ${describeError(error)}`);
  } finally {
    reader.close();
  }
  try {
    await extractContainer(container, out);
    problems.push(...(await diffTrees(src, out)).map((d) => `extracted tree: ${d}`));
  } catch (error) {
    problems.push(`extract: ${describeError(error)}`);
  }
  await Deno.remove(out, { recursive: true }).catch(() => {});
  return problems;
}

/** Where a SIGKILL landed, judged from what it left. */
export async function killPhase(
  container: string,
  before: { container: number; index: number },
): Promise<string> {
  const size = await sizeOf(container);
  const indexBytes = await readOrEmpty(`${container}.idx`);
  if (size === before.container && indexBytes.length === before.index) {
    return "start, scan or walk (nothing changed)";
  }
  if (indexBytes.length === 0) return size > 0 ? "first batch (nothing indexed)" : "start";
  const index = parseIndex(indexBytes);
  const end = payloadEnd(index.list);
  if (index.torn) return "index append (torn line)";
  if (size < end) return "resume cut (container shorter than its index)";
  if (size === end) {
    return before.container > end ? "after the old trailer was cut away" : "between batches";
  }
  const head = await readRange(container, end, TRAILER_HEADER_SIZE);
  if (!equalBytes(head.subarray(0, 8), TRAILER_MAGIC)) return "payload writes (unindexed bytes)";
  const length = Number(new DataView(head.buffer, head.byteOffset).getBigUint64(8, true));
  return size === end + TRAILER_HEADER_SIZE + length + FOOTER_SIZE
    ? "finalize (whole trailer written)"
    : "finalize (trailer written in part)";
}

// ---------------------------------------------------------------------------
// Helpers

/** What a subprocess did. */
export interface ProcessRun {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  /** Wall time in milliseconds. */
  ms: number;
}

/** A signal to send to a subprocess, and when. */
export interface Stop {
  signal: Deno.Signal;
  /** Milliseconds to wait after the start, or after `when` holds. */
  afterMs: number;
  /** Wait until this holds (polled) before counting `afterMs`. */
  when?: () => Promise<boolean>;
}

/** Longest a subprocess of the crash tests may run before it is killed and the test fails. */
export const PROCESS_TIMEOUT_MS = 120_000;

/** Run the CLI as a subprocess, optionally sending it a signal. */
export function runProcess(args: string[], stop?: Stop): Promise<ProcessRun> {
  return runDeno(["run", "-A", CLI, ...args], stop);
}

/**
 * Run `deno <args>` as a subprocess, optionally sending it a signal; killed with SIGKILL and
 * failing (throws) when it runs longer than `timeoutMs`.
 */
export async function runDeno(
  args: string[],
  stop?: Stop,
  timeoutMs = PROCESS_TIMEOUT_MS,
): Promise<ProcessRun> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: PROJECT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let exited = false;
  let timedOut = false;
  const output = child.output().finally(() => {
    exited = true;
  });
  const watchdog = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* it has just ended */ }
  }, timeoutMs);
  try {
    if (stop) {
      if (stop.when) { while (!exited && !(await stop.when())) await sleep(1, output); }
      await sleep(stop.afterMs, output);
      if (!exited) {
        try {
          child.kill(stop.signal);
        } catch { /* it has just ended */ }
      }
    }
    const result = await output;
    const decoder = new TextDecoder();
    if (timedOut) {
      throw new Error(
        `deno ${args.join(" ")} ran over ${timeoutMs} ms and was killed; stderr: ` +
          decoder.decode(result.stderr).slice(-2000),
      );
    }
    return {
      code: result.code,
      signal: result.signal,
      stdout: decoder.decode(result.stdout),
      stderr: decoder.decode(result.stderr),
      ms: performance.now() - started,
    };
  } finally {
    clearTimeout(watchdog);
  }
}

/** Wait `ms` milliseconds, or less when `until` settles first. */
export function sleep(ms: number, until: Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    until.finally(() => {
      clearTimeout(timer);
      resolve();
    }).catch(() => {});
  });
}

export interface TreeShape {
  /** Small files (0 to 1500 bytes, every 17th empty) in nested folders. */
  smallFiles: number;
  /** Sizes in bytes of big random files; the first is the first entry in walk order. */
  bigSizes: number[];
  /** Folder under the root to build in. */
  folder?: string;
}

/** Build a tree with small and empty files, big files, an empty folder and a symlink. */
export function buildTree(root: string, random: Random, shape: TreeShape): void {
  const base = shape.folder ? `${root}/${shape.folder}` : root;
  for (let i = 0; i < shape.smallFiles; i++) {
    const path = `${base}/${smallPath(i)}`;
    Deno.mkdirSync(dirname(path), { recursive: true });
    Deno.writeFileSync(path, random.text(i % 17 === 0 ? 0 : random.int(1500)));
  }
  shape.bigSizes.forEach((size, k) => {
    const folder = k === 0 ? `${base}/a-first` : `${base}/d${(k * 4) % 9}`;
    Deno.mkdirSync(folder, { recursive: true });
    Deno.writeFileSync(`${folder}/blob${k}.bin`, random.bytes(size));
  });
  Deno.mkdirSync(`${base}/d4/empty-folder`, { recursive: true });
  Deno.mkdirSync(`${base}/links`, { recursive: true });
  Deno.symlinkSync(`../${smallPath(0)}`, `${base}/links/to-first`);
}

export function smallPath(i: number): string {
  return `d${i % 9}/e${(i * 7) % 5}${i % 3 === 0 ? `/f${i % 4}` : ""}/n${i}.txt`;
}

export function smallSpec() {
  return {
    "a.txt": "alpha",
    "empty.bin": "",
    "data/noise.bin": new Random(SEED + 5).bytes(300_000),
    "deep/x/y/leaf.txt": "leaf",
    "hollow": { dir: true },
    "link": { symlink: "a.txt" },
  } as const;
}

/** Run `fn` with a fresh temp folder on /dev/shm when there is one, removed afterwards. */
export async function withScratchDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  let base: string | undefined;
  try {
    if ((await Deno.stat("/dev/shm")).isDirectory) base = "/dev/shm";
  } catch { /* no /dev/shm: the default temp folder */ }
  const dir = await Deno.makeTempDir(
    base ? { dir: base, prefix: "ctnr-crash-" } : {
      prefix: "ctnr-crash-",
    },
  );
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

export interface IndexedRange {
  relpath: string;
  entryType: string;
  offset: number;
  payloadSize: number;
  sha256: string;
}

export interface ParsedIndex {
  /** Entries of the whole lines, and of a last line without newline that is whole JSON. */
  list: IndexedRange[];
  /** Whether bytes follow the last newline. */
  torn: boolean;
  /** Line numbers (1-based) of whole lines that are not JSON. */
  bad: number[];
}

/** Parse an NDJSON index as a crash may leave it (a torn last line, or worse). */
export function parseIndex(bytes: Uint8Array): ParsedIndex {
  const lines = new TextDecoder().decode(bytes).split("\n");
  const tail = lines.pop() ?? "";
  const list: IndexedRange[] = [];
  const take = (line: string): boolean => {
    let wire: Record<string, unknown>;
    try {
      wire = JSON.parse(line);
    } catch {
      return false;
    }
    // Folders and links may leave out offset and payload_size.
    list.push({
      relpath: String(wire.relpath),
      entryType: String(wire.entry_type ?? "file"),
      offset: Number(wire.offset ?? 0),
      payloadSize: Number(wire.payload_size ?? 0),
      sha256: String(wire.sha256 ?? ""),
    });
    return true;
  };
  const bad: number[] = [];
  lines.forEach((line, i) => {
    if (line.trim() !== "" && !take(line)) bad.push(i + 1);
  });
  const torn = tail.trim() !== "";
  if (torn) take(tail);
  return { list, torn, bad };
}

/**
 * The index a resume would start from, parsed tolerantly: the `.idx` when it
 * has any bytes, else the container's embedded index, else none.
 */
export async function onDiskIndex(container: string): Promise<ParsedIndex> {
  const file = await readOrEmpty(`${container}.idx`);
  if (file.length > 0) return parseIndex(file);
  const bytes = await readOrEmpty(container);
  let trailer: TrailerLocation | null = null;
  try {
    trailer = await findTrailer(memorySource(bytes));
  } catch { /* a torn trailer: no index */ }
  if (trailer === null) return { list: [], torn: false, bad: [] };
  return parseIndex(bytes.subarray(trailer.indexOffset, trailer.indexOffset + trailer.indexLength));
}

/**
 * Problems with what a crash left behind, before any resume repairs it:
 * every entry of the index (a whole last line without its newline counts)
 * must find its payload, whole and verifying, in the container.
 */
export async function checkCommitted(container: string): Promise<string[]> {
  const index = await onDiskIndex(container);
  const bytes = await readOrEmpty(container);
  const problems = index.bad.map((line) => `index line ${line} is not JSON`);
  for (const entry of index.list) {
    if (problems.length >= 3) break;
    if (entry.entryType !== "file") continue;
    const end = entry.offset + entry.payloadSize;
    if (end > bytes.length) {
      problems.push(
        `"${entry.relpath}" is indexed, but its payload (bytes ${entry.offset} to ${end}) ` +
          `is not in the ${bytes.length}-byte container`,
      );
    } else if (sha256Hex(bytes.subarray(entry.offset, end)) !== entry.sha256) {
      problems.push(`"${entry.relpath}" is indexed, but its payload does not verify`);
    }
  }
  return problems;
}

/** Entries reported committed (`onEntry`), by relpath: where their payload is and its SHA-256. */
export type Committed = Map<string, { offset: number; sha256: string; entryType: string }>;

/** An `onEntry` callback that records each committed entry in `committed`. */
export function recordCommitted(committed: Committed): (entry: IndexEntry) => void {
  return (entry) =>
    committed.set(entry.relpath, {
      offset: entry.offset,
      sha256: entry.sha256,
      entryType: entry.entryType,
    });
}

/**
 * Problems with the entries `create` reported committed: each must still be
 * in the index a resume starts from (or in the container's final index), at
 * the same offset and with the same SHA-256. A crash may lose only entries
 * not yet committed.
 */
export async function lostCommitted(container: string, committed: Committed): Promise<string[]> {
  const found = new Map((await onDiskIndex(container)).list.map((e) => [e.relpath, e]));
  const problems: string[] = [];
  for (const [relpath, { offset, sha256, entryType }] of committed) {
    const entry = found.get(relpath);
    if (entry === undefined) problems.push(`committed "${relpath}" is not in the index`);
    else if (entry.entryType !== entryType) {
      problems.push(`committed "${relpath}" is a ${entry.entryType} now`);
    } else if (entryType === "file" && (entry.offset !== offset || entry.sha256 !== sha256)) {
      problems.push(`committed "${relpath}" changed (offset ${offset} -> ${entry.offset})`);
    }
    if (problems.length >= 3) break;
  }
  return problems;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export function payloadEnd(entries: { offset: number; payloadSize: number }[]): number {
  return entries.reduce((end, e) => Math.max(end, e.offset + e.payloadSize), 0);
}

export async function readEntries(container: string): Promise<IndexEntry[]> {
  const reader = await ContainerReader.open(container);
  try {
    const entries: IndexEntry[] = [];
    for await (const entry of reader.entries()) entries.push(entry);
    return entries;
  } finally {
    reader.close();
  }
}

export function parseKv(text: string): Map<string, string> {
  return new Map(
    text.split("\n").filter((line) => line.includes("=")).map((line) => {
      const at = line.indexOf("=");
      return [line.slice(0, at), line.slice(at + 1)] as const;
    }),
  );
}

export async function readRange(
  path: string,
  position: number,
  length: number,
): Promise<Uint8Array> {
  const file = await Deno.open(path, { read: true });
  try {
    await file.seek(position, Deno.SeekMode.Start);
    const bytes = new Uint8Array(length);
    let filled = 0;
    while (filled < length) {
      const n = await file.read(bytes.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    return bytes.subarray(0, filled);
  } finally {
    file.close();
  }
}

export function occurrences(bytes: Uint8Array, pattern: Uint8Array): number {
  let count = 0;
  for (let i = bytes.indexOf(pattern[0]!); i >= 0; i = bytes.indexOf(pattern[0]!, i + 1)) {
    if (equalBytes(bytes.subarray(i, i + pattern.length), pattern)) count++;
  }
  return count;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export async function readOrEmpty(path: string): Promise<Uint8Array> {
  return await exists(path) ? await Deno.readFile(path) : new Uint8Array();
}

export async function sizeOf(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
}

export function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

export function seedFromEnv(): number {
  const text = Deno.env.get("CTNR_CRASH_SEED");
  if (text !== undefined && /^\d+$/.test(text)) return Number(text) >>> 0;
  return Math.floor(Math.random() * 0x1_0000_0000);
}

/** A seeded pseudo-random generator (mulberry32), so a failing run can be replayed. */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A number in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** An integer in [low, high]. */
  range(low: number, high: number): number {
    return low + this.int(high - low + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** A copy of `items` in random order (Fisher-Yates). */
  shuffled<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  /** One of `choices`, each as likely as its weight. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    let left = this.next() * choices.reduce((sum, [weight]) => sum + weight, 0);
    for (const [weight, choice] of choices) {
      left -= weight;
      if (left < 0) return choice;
    }
    return choices[choices.length - 1]![1];
  }

  /** Printable ASCII text of `length` bytes. */
  text(length: number): Uint8Array {
    const bytes = new Uint8Array(length);
    for (let i = 0; i < length; i++) bytes[i] = 32 + this.int(95);
    return bytes;
  }

  /** Random bytes (incompressible). */
  bytes(length: number): Uint8Array {
    const words = new Uint32Array(Math.ceil(length / 4));
    for (let i = 0; i < words.length; i++) words[i] = this.next() * 0x1_0000_0000;
    return new Uint8Array(words.buffer, 0, length);
  }
}
