/**
 * Shared test helpers: temp folders, building trees, comparing trees,
 * running the CLI in-process with captured output, and running a
 * subprocess bounded by a timeout.
 *
 * @module
 */

import assert from "node:assert/strict";
import { main } from "../cli.ts";
import { ContainerFormatError, type RandomAccess } from "../mod.ts";

/** A tree to build: file contents, `{ dir: true }` for a folder, `{ symlink }` for a link. */
export type TreeSpec = Record<
  string,
  string | Uint8Array | { dir: true } | { symlink: string } | {
    content: string | Uint8Array;
    mode?: number;
    mtime?: number;
  }
>;

/** Run `fn` with a fresh temp folder, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "ctnr-test-" });
  try {
    return await fn(dir);
  } finally {
    await makeWritable(dir);
    await Deno.remove(dir, { recursive: true });
  }
}

async function makeWritable(dir: string): Promise<void> {
  try {
    await Deno.chmod(dir, 0o755);
    for await (const item of Deno.readDir(dir)) {
      if (item.isDirectory) await makeWritable(`${dir}/${item.name}`);
    }
  } catch { /* best effort */ }
}

/** Build `spec` under `root` (folders created as needed). */
export async function writeTree(root: string, spec: TreeSpec): Promise<void> {
  await Deno.mkdir(root, { recursive: true });
  for (const [relpath, value] of Object.entries(spec)) {
    const path = `${root}/${relpath}`;
    const parent = path.slice(0, path.lastIndexOf("/"));
    await Deno.mkdir(parent, { recursive: true });
    if (typeof value === "string" || value instanceof Uint8Array) {
      await write(path, value);
    } else if ("dir" in value) {
      await Deno.mkdir(path, { recursive: true });
    } else if ("symlink" in value) {
      await Deno.symlink(value.symlink, path);
    } else {
      await write(path, value.content);
      if (value.mode !== undefined) await Deno.chmod(path, value.mode);
      if (value.mtime !== undefined) await Deno.utime(path, value.mtime, value.mtime);
    }
  }
}

function write(path: string, value: string | Uint8Array): Promise<void> {
  return typeof value === "string" ? Deno.writeTextFile(path, value) : Deno.writeFile(path, value);
}

/** Options of {@link diffTrees}. */
export interface DiffOptions {
  /** Compare permission bits. @default true */
  modes?: boolean;
  /** Compare file mtimes (milliseconds). @default true */
  mtimes?: boolean;
}

/**
 * List the differences between two trees (contents, kinds, link targets,
 * and optionally modes and file mtimes). Empty when they are the same.
 */
export async function diffTrees(
  a: string,
  b: string,
  options: DiffOptions = {},
): Promise<string[]> {
  const diffs: string[] = [];
  const left = await listTree(a);
  const right = await listTree(b);
  for (const rel of new Set([...left.keys(), ...right.keys()])) {
    const x = left.get(rel);
    const y = right.get(rel);
    if (!x || !y) {
      diffs.push(`${rel}: only in ${x ? "first" : "second"}`);
      continue;
    }
    if (x.kind !== y.kind) diffs.push(`${rel}: ${x.kind} vs ${y.kind}`);
    else if (x.kind === "symlink" && x.target !== y.target) {
      diffs.push(`${rel}: link target differs`);
    } else if (x.kind === "file") {
      const [p, q] = await Promise.all([
        Deno.readFile(`${a}/${rel}`),
        Deno.readFile(`${b}/${rel}`),
      ]);
      if (p.length !== q.length || p.some((v, i) => v !== q[i])) {
        diffs.push(`${rel}: content differs`);
      }
      if ((options.mtimes ?? true) && x.mtime !== y.mtime) {
        diffs.push(`${rel}: mtime ${x.mtime} vs ${y.mtime}`);
      }
    }
    if ((options.modes ?? true) && x.kind !== "symlink" && x.mode !== y.mode) {
      diffs.push(`${rel}: mode ${x.mode.toString(8)} vs ${y.mode.toString(8)}`);
    }
  }
  return diffs;
}

interface Node {
  kind: "file" | "dir" | "symlink" | "other";
  mode: number;
  mtime: number;
  target?: string;
}

async function listTree(
  root: string,
  rel = "",
  out = new Map<string, Node>(),
): Promise<Map<string, Node>> {
  for await (const item of Deno.readDir(rel ? `${root}/${rel}` : root)) {
    const r = rel ? `${rel}/${item.name}` : item.name;
    const info = await Deno.lstat(`${root}/${r}`);
    const node: Node = {
      kind: info.isFile ? "file" : info.isDirectory ? "dir" : info.isSymlink ? "symlink" : "other",
      mode: (info.mode ?? 0) & 0o7777,
      mtime: info.mtime?.getTime() ?? 0,
    };
    if (info.isSymlink) node.target = await Deno.readLink(`${root}/${r}`);
    out.set(r, node);
    if (info.isDirectory) await listTree(root, r, out);
  }
  return out;
}

/** Every path (files, folders, links) under `root`, relative, sorted. */
export async function listPaths(root: string): Promise<string[]> {
  return [...(await listTree(root)).keys()].sort();
}

/** Result of {@link runCli}. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the `ctnr` CLI in-process with captured output. */
export async function runCli(...args: string[]): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const bytes: Uint8Array[] = [];
  const code = await main(args, {
    stdout: (text) => stdout += text + "\n",
    stderr: (text) => stderr += text + "\n",
    writeBytes: (b) => {
      bytes.push(b.slice());
      return Promise.resolve();
    },
    isTerminal: false,
  });
  if (bytes.length > 0) stdout += new TextDecoder().decode(concatBytes(bytes));
  return { code, stdout, stderr };
}

/**
 * Run the real `ctnr` in a child process (`deno run --allow-all cli.ts`): signals, exit, the
 * process's own stdout and stderr.
 */
export async function runCliProcess(...args: string[]): Promise<CliRun> {
  const cli = new URL("../cli.ts", import.meta.url).pathname;
  const run = await runCommand(Deno.execPath(), ["run", "--allow-all", cli, ...args], {
    timeoutMs: DENO_CHILD_TIMEOUT_MS,
  });
  return { code: run.code, stdout: run.stdout, stderr: run.stderr };
}

/** Concatenate byte arrays. */
export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Path of a file in `tests/fixtures/`. */
export function fixture(relpath: string): string {
  return new URL(`./fixtures/${relpath}`, import.meta.url).pathname;
}

/** Deterministic bytes that do not compress (xorshift32), so failures reproduce. */
export function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Whether anything (file, folder, link, even a dangling one) stands at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * A {@link RandomAccess} over bytes in memory that counts the bytes read and, like a real file,
 * fails a read past the end with {@link ContainerFormatError}.
 */
export function memorySource(
  bytes: Uint8Array,
  options: { readInto?: boolean } = {},
): RandomAccess & { bytesRead: number } {
  const source: RandomAccess & { bytesRead: number } = {
    size: bytes.length,
    bytesRead: 0,
    readAt(position: number, length: number): Promise<Uint8Array> {
      if (position < 0 || position + length > bytes.length) {
        return Promise.reject(new ContainerFormatError(`Cannot read ${length} at ${position}`));
      }
      source.bytesRead += length;
      return Promise.resolve(bytes.slice(position, position + length));
    },
  };
  if (options.readInto) {
    // Like a real file: the caller's buffer is filled (readers reuse it between reads).
    source.readInto = async (position: number, into: Uint8Array) => {
      into.set(await source.readAt(position, into.length));
    };
  }
  return source;
}

/**
 * Milliseconds a test gives a `deno` child process (the CLI, or a probe script) before killing it:
 * generous, so that only a hang reaches it, even on a slow CI machine.
 */
export const DENO_CHILD_TIMEOUT_MS = 60_000;

/** Milliseconds a test gives a small system tool (`mkfifo`, `mknod`, `bash -c`, `python3 -c`). */
export const TOOL_TIMEOUT_MS = 10_000;

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** Milliseconds after which the child is killed with SIGKILL. No default: every run is bounded. */
  timeoutMs: number;
  /** Working folder of the child. @default the test's working folder */
  cwd?: string;
  /** Variables added to the child's environment (it inherits the rest). */
  env?: Record<string, string>;
  /** Text or bytes written to the child's stdin, which is then closed. @default stdin is null */
  stdin?: string | Uint8Array;
  /**
   * What a timeout does: `"fail"` throws an `AssertionError` naming the command (the test fails);
   * `"return"` gives back the run with `timedOut: true`, for a test that expects a hang and
   * asserts it itself. @default "fail"
   */
  onTimeout?: "fail" | "return";
}

/** Result of {@link runCommand}. */
export interface CommandRun {
  /** Exit code (128 + the signal number when a signal ended the child). */
  code: number;
  /** The signal that ended the child, or null. */
  signal: Deno.Signal | null;
  /** stdout, decoded as UTF-8. */
  stdout: string;
  /** stderr, decoded as UTF-8. */
  stderr: string;
  /** Wall time of the run in milliseconds. */
  ms: number;
  /** Whether the child was killed at `timeoutMs` (only seen with `onTimeout: "return"`). */
  timedOut: boolean;
}

/**
 * Run `cmd` with `args` as a subprocess with captured output, killed with SIGKILL after
 * `options.timeoutMs` (SIGKILL: a process stuck in a blocking `open()` of a FIFO never runs a
 * SIGTERM handler). By default a timeout then fails the test with a message naming the command;
 * a non-zero exit does not: the caller asserts on `code`. Failing to start (no such program)
 * throws the spawn error (e.g. `Deno.errors.NotFound`).
 *
 * Only the child itself is killed: a grandchild that keeps its stdout or stderr open would keep
 * this waiting, so run programs that do not leave processes behind.
 *
 * @param cmd program to run (a name looked up in PATH, or a path)
 * @param args its arguments
 * @param options timeout, working folder, environment, stdin and what a timeout does
 * @returns exit code, signal, decoded stdout and stderr, wall time in milliseconds, timedOut
 * @throws {AssertionError} when the child is killed at the timeout and `onTimeout` is `"fail"`
 *
 * @example Run a tool and assert its exit code
 * ```ts ignore
 * const run = await runCommand("mkfifo", [`${dir}/pipe`], { timeoutMs: TOOL_TIMEOUT_MS });
 * assert.equal(run.code, 0, run.stderr);
 * ```
 */
export async function runCommand(
  cmd: string,
  args: string[],
  options: RunCommandOptions,
): Promise<CommandRun> {
  const { timeoutMs } = options;
  if (!(timeoutMs > 0)) throw new RangeError(`Cannot run "${cmd}": timeoutMs must be positive`);
  const started = performance.now();
  const child = new Deno.Command(cmd, {
    args,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.env === undefined ? {} : { env: options.env }),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* it has just ended */ }
  }, timeoutMs);
  let output: Deno.CommandOutput;
  try {
    const feed = options.stdin === undefined ? Promise.resolve() : feedStdin(child, options.stdin);
    // The input is written while the output is read, so neither side waits on a full pipe.
    [output] = await Promise.all([child.output(), feed]);
  } finally {
    clearTimeout(timer);
  }
  const decoder = new TextDecoder();
  const run: CommandRun = {
    code: output.code,
    signal: output.signal,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
    ms: performance.now() - started,
    timedOut,
  };
  if (timedOut && (options.onTimeout ?? "fail") === "fail") {
    assert.fail(
      `Command ${commandLabel(cmd, args)} did not end within ${timeoutMs} ms: killed with ` +
        `SIGKILL after ${Math.round(run.ms)} ms\n--- stderr (end) ---\n${run.stderr.slice(-2000)}`,
    );
  }
  return run;
}

async function feedStdin(child: Deno.ChildProcess, input: string | Uint8Array): Promise<void> {
  const writer = child.stdin.getWriter();
  try {
    await writer.write(typeof input === "string" ? new TextEncoder().encode(input) : input);
    await writer.close();
  } catch {
    // The child ended (or was killed) without reading all its input: its exit code tells.
  }
}

/** The command as a shell would show it, long arguments shortened. */
function commandLabel(cmd: string, args: string[]): string {
  return [cmd, ...args].map((arg) => {
    const short = arg.length > 200 ? `${arg.slice(0, 200)}...` : arg;
    return /^[\w./:=@%+-]+$/.test(short) ? short : JSON.stringify(short);
  }).join(" ");
}

/**
 * Record every folder listed through `Deno.readDir` or `Deno.readDirSync` (the walk uses one or
 * the other by the folder's size) into `listed`, until the returned function is called.
 *
 * @param listed receives each listed path, as given
 * @param only record only the folders listed in one call (`Deno.readDirSync`)
 * @returns puts both functions back
 */
export function spyOnListings(listed: string[], only?: "readDirSync"): () => void {
  const readDir = Deno.readDir;
  const readDirSync = Deno.readDirSync;
  const deno = Deno as { readDir: typeof Deno.readDir; readDirSync: typeof Deno.readDirSync };
  if (only === undefined) {
    deno.readDir = (path) => {
      listed.push(String(path));
      return readDir(path);
    };
  }
  deno.readDirSync = (path) => {
    listed.push(String(path));
    return readDirSync(path);
  };
  return () => {
    deno.readDir = readDir;
    deno.readDirSync = readDirSync;
  };
}

/**
 * Run `fn` with environment variables set (a string) or unset (`undefined`), then put back what
 * was there (unset when it was unset).
 *
 * @param variables each variable and its value while `fn` runs
 * @param fn what runs
 * @returns what `fn` returns
 */
export async function withEnv<T>(
  variables: Record<string, string | undefined>,
  fn: () => Promise<T>,
): Promise<T> {
  const before = Object.keys(variables).map((name) => [name, Deno.env.get(name)] as const);
  const apply = (name: string, value: string | undefined) =>
    value === undefined ? Deno.env.delete(name) : Deno.env.set(name, value);
  for (const [name, value] of Object.entries(variables)) apply(name, value);
  try {
    return await fn();
  } finally {
    for (const [name, value] of before) apply(name, value);
  }
}
