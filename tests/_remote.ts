/**
 * Shared setup of the remote-reading tests (remote_test.ts, remote_faults_test.ts): containers
 * built with the library in a served folder, a real nginx in front of it, runs of the CLI in
 * process with a cache folder of the test's own.
 *
 * @module
 */

import { ContainerWriter } from "../mod.ts";
import {
  type CliRun,
  exists,
  fixture,
  listPaths,
  runCli,
  withEnv,
  withTempDir,
} from "./_helpers.ts";
import { type NginxServer, serving } from "./_servers.ts";

/** Seconds since the epoch of every entry the builders write (whole seconds). */
export const MTIME = 1_600_000_000;

/**
 * A small container: files of several sizes and modes, a folder, a link, an empty file.
 *
 * @param path where to write it
 * @param compress gzip the payloads
 * @param bigBytes size of `data/big.bin` (over 1 MiB: the container is more than the tail read
 *   at open, so its payloads cost requests of their own)
 */
export async function buildSmall(
  path: string,
  compress = false,
  bigBytes = 300_000,
): Promise<void> {
  const writer = await ContainerWriter.open(path, { compress });
  const text = new TextEncoder();
  await writer.addFolder({ relpath: "docs", mode: 0o750, mtime: MTIME - 10 });
  await writer.addFile({ relpath: "docs/a.md", mode: 0o640, mtime: MTIME }, text.encode("alpha\n"));
  await writer.addFile({ relpath: "docs/b.md", mode: 0o600, mtime: MTIME + 1 }, text.encode("b\n"));
  await writer.addFile({ relpath: "empty.txt", mode: 0o644, mtime: MTIME }, new Uint8Array(0));
  await writer.addFile(
    { relpath: "run.sh", mode: 0o755, mtime: MTIME + 2 },
    text.encode("#!/bin/sh\necho hi\n"),
  );
  const big = new Uint8Array(bigBytes);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 9)) & 0xff;
  await writer.addFile({ relpath: "data/big.bin", mode: 0o644, mtime: MTIME + 3 }, big);
  await writer.addSymlink({ relpath: "link" }, "docs/a.md");
  await writer.finalize({ removeIndex: true });
}

/**
 * A container of `n` tiny files (`d<k>/f<i>.txt`, 1000 per folder); its index is about
 * 200 bytes per entry (over 8 MiB for 100,000).
 *
 * @param path where to write it
 * @param n how many files
 */
export async function buildMany(path: string, n: number): Promise<void> {
  const writer = await ContainerWriter.open(path, { pathsUnique: true });
  const text = new TextEncoder();
  for (let i = 0; i < n; i++) {
    const name = `d${Math.floor(i / 1000)}/f${i % 1000}.txt`;
    await writer.addFile({ relpath: name, mode: 0o644, mtime: MTIME }, text.encode(`${i}\n`));
  }
  await writer.finalize({ removeIndex: true });
}

/**
 * Copy the original tools' containers (tests/fixtures/peer: no footer; `external.ctnr` has
 * its index only in `external.ctnr.idx`) into `dir`.
 *
 * @param dir the served folder
 */
export async function copyPeerFixtures(dir: string): Promise<void> {
  for (const name of ["plain.ctnr", "gzip.ctnr", "external.ctnr", "external.ctnr.idx"]) {
    await Deno.copyFile(fixture(`peer/${name}`), `${dir}/${name}`);
  }
}

/**
 * Run the CLI in process with `CTNR_CACHE_DIR` set to `cacheDir`.
 *
 * @param cacheDir the index cache folder for this run
 * @param args the command line
 * @returns exit code, stdout, stderr
 */
export function ctnr(cacheDir: string, ...args: string[]): Promise<CliRun> {
  return withEnv({ CTNR_CACHE_DIR: cacheDir }, () => runCli(...args));
}

/**
 * Every file under `dir` (recursively) whose name says it is a temp file of ctnr's
 * (lib/io/temp_file.ts: `.ctnr-tmp` in it), relative to `dir`; empty when `dir` is missing.
 *
 * @param dir the folder
 * @returns the temp files found
 */
export async function tempFiles(dir: string): Promise<string[]> {
  if (!(await exists(dir))) return [];
  return (await listPaths(dir)).filter((path) => path.split("/").at(-1)!.includes(".ctnr-tmp"));
}

/**
 * A temp folder whose `served` folder `build` fills, then nginx serving that folder for `fn`;
 * both are removed after.
 *
 * @param build writes the served files into the folder it is given
 * @param fn what runs while it is served, given the temp folder and the server
 */
export function withServed(
  build: (served: string) => Promise<void>,
  fn: (root: string, nginx: NginxServer) => Promise<void>,
): Promise<void> {
  return withTempDir(async (root) => {
    await Deno.mkdir(`${root}/served`);
    await build(`${root}/served`);
    await serving(`${root}/served`, (nginx) => fn(root, nginx));
  });
}
