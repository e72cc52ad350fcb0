/**
 * Builds the release binaries of ctnr with `deno compile`: one self-contained executable per
 * target in `dist/` (`dist/ctnr-x86_64-unknown-linux-gnu`, ..., `dist/ctnr-x86_64-pc-windows-msvc.exe`).
 *
 * Usage: `deno task compile [TARGET...]` (no target: all of {@link TARGETS}). Any target builds on
 * any OS, but `deno compile` downloads the base runtime (denort) of each target from
 * dl.deno.land, so it needs internet access. Exit code 2 for an unknown target, else the first
 * failing `deno compile`'s.
 *
 * @module
 */

/** The targets of a release, as `deno compile --target` names them. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** A target of {@link TARGETS}. */
export type Target = typeof TARGETS[number];

/**
 * The environment variables ctnr reads, and no other: the index cache's folder
 * (lib/remote/index_cache.ts), the schedulers' array index that `--part N` takes its part from
 * (cli/_reader.ts) and the AWS CLI's variables for `s3://` (lib/remote/s3.ts).
 * tests/release_test.ts checks that lib/ reads no variable missing here.
 */
export const ENVIRONMENT = [
  "CTNR_CACHE_DIR",
  "JOB_COMPLETION_INDEX",
  "SLURM_ARRAY_TASK_ID",
  "AWS_BATCH_JOB_ARRAY_INDEX",
  "XDG_CACHE_HOME",
  "HOME",
  "LOCALAPPDATA",
  "USERPROFILE",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_ENDPOINT_URL",
  "AWS_ENDPOINT_URL_S3",
  "AWS_PROFILE",
  "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_CONFIG_FILE",
] as const;

/**
 * The permissions baked into the binary: the narrowest that every command needs (read and write
 * the paths it is given; `Deno.uid()`, which decides whether extract applies modes as root does;
 * the network for a container on a server, whose host is not known in advance; the variables of
 * {@link ENVIRONMENT}). A compiled binary takes no `--allow-*` flags at run time, so paths under
 * `/dev` and `/proc` (Deno 2.9.6 asks for `--allow-all` there) stay closed to it: README "Release
 * binaries".
 */
export const PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-sys",
  "--allow-net",
  `--allow-env=${ENVIRONMENT.join(",")}`,
] as const;

/**
 * The modules lib/ loads by a computed URL (the worker modules, and the S3 signer that only an
 * `s3://` URL loads): a compiled binary holds no module it is not given.
 */
export const WORKER_MODULES = [
  "lib/create/_create_worker.ts",
  "lib/extract/_extract_worker.ts",
  "lib/remote/_aws4fetch.ts",
] as const;

/**
 * The file name of the binary for a target.
 *
 * @param target a target of {@link TARGETS}
 * @returns `ctnr-<target>`, with `.exe` for Windows
 */
export function binaryName(target: Target): string {
  return `ctnr-${target}${target.includes("windows") ? ".exe" : ""}`;
}

/**
 * The arguments of `deno` that build the binary of one target.
 *
 * @param target a target of {@link TARGETS}
 * @param outDir folder of the binary, relative to the project root
 * @default outDir "dist"
 * @returns `["compile", ...]`, to run from the project root
 */
export function compileArgs(target: Target, outDir = "dist"): string[] {
  return [
    "compile",
    ...PERMISSIONS,
    // Extract's peak memory at a million entries, 170-199 MiB against 233-307 MiB, no slower
    // (README "Memory").
    "--v8-flags=--max-semi-space-size=4",
    ...WORKER_MODULES.flatMap((path) => ["--include", path]),
    "--target",
    target,
    "--output",
    `${outDir}/${binaryName(target)}`,
    "cli.ts",
  ];
}

function isTarget(name: string): name is Target {
  return (TARGETS as readonly string[]).includes(name);
}

if (import.meta.main) {
  const unknown = Deno.args.filter((name) => !isTarget(name));
  if (unknown.length > 0) {
    console.error(`compile: Unknown target "${unknown[0]}": one of ${TARGETS.join(", ")}`);
    Deno.exit(2);
  }
  const targets = Deno.args.length > 0 ? Deno.args.filter(isTarget) : [...TARGETS];
  const root = new URL("../", import.meta.url);
  for (const target of targets) {
    console.error(`compile: ${binaryName(target)}`);
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: compileArgs(target),
      cwd: root,
    }).spawn().status;
    if (code !== 0) Deno.exit(code);
  }
}
