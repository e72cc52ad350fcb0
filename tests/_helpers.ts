/**
 * Shared test helpers: temp folders, building trees, comparing trees, and
 * running the CLI in-process with captured output.
 *
 * @module
 */

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
