import assert from "node:assert/strict";
import {
  DENO_CHILD_TIMEOUT_MS,
  diffTrees,
  runCommand,
  TOOL_TIMEOUT_MS,
  withTempDir,
  writeTree,
} from "./_helpers.ts";
import denoJson from "../deno.json" with { type: "json" };

const ROOT = new URL("..", import.meta.url).pathname;

/**
 * Serve the project's files on 127.0.0.1 as a code host does (`.ts` as `text/plain`) while `fn`
 * runs, with the server's base URL.
 */
async function serveProject(fn: (base: string) => Promise<void>): Promise<void> {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.includes("..")) return new Response("no", { status: 403 });
    try {
      return new Response(await Deno.readFile(ROOT + path.slice(1)), {
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  try {
    await fn(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    await server.shutdown();
  }
}

/** Where the README's install lines fetch the command from, up to `/cli.ts`. */
const README_HOST = /^https:\/\/raw\.githubusercontent\.com\/OWNER\/ctnr\/v([^/]+)$/;

/**
 * The README's "From a URL" lines, `deno run ...` and `deno install -g ...`, as argument lists
 * (after `deno`) up to their URL, with the URL's host and tag (checked to be the version in
 * deno.json) replaced by `base`: the tests run what the README says.
 */
async function readmeLines(base: string): Promise<{ run: string[]; install: string[] }> {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const { version } = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)) as {
    version: string;
  };
  const lines = readme.split("\n").filter((line) =>
    /^deno (run|install) .*https:\/\/raw\.githubusercontent\.com\//.test(line)
  );
  const pick = (command: string) => {
    const found = lines.filter((line) => line.startsWith(`deno ${command} `));
    assert.equal(found.length, 1, `README lines "deno ${command}" from a URL: ${found.length}`);
    const args = found[0]!.split(/ +/).slice(1);
    const at = args.findIndex((arg) => arg.endsWith("/cli.ts"));
    assert.ok(at > 0, found[0]);
    const host = README_HOST.exec(args[at]!.slice(0, -"/cli.ts".length));
    assert.ok(host, `README's URL ${args[at]} is not ${README_HOST}`);
    assert.equal(host[1], version, "README's release tag is deno.json's version");
    args[at] = `${base}/cli.ts`;
    return args.slice(0, at + 1);
  };
  return { run: pick("run"), install: pick("install") };
}

/** A tree of more than 512 files (create's read workers and extract's write workers start). */
async function bigTree(src: string): Promise<void> {
  const spec: Record<string, string> = { "top.txt": "top" };
  for (let i = 0; i < 700; i++) spec[`d${i % 7}/f${i}.txt`] = `file ${i}`;
  await writeTree(src, spec);
}

Deno.test("cli.ts runs from a URL as the README says, without the project's deno.json: create and extract --tqdm, workers too", async () => {
  await withTempDir(async (dir) => {
    await bigTree(`${dir}/src`);
    await Deno.mkdir(`${dir}/cwd`);
    const { runtime, testOnly } = await npmPackages();
    const env = { DENO_DIR: await seededCache(dir, runtime), NO_COLOR: "1" };
    await serveProject(async (base) => {
      const { run } = await readmeLines(base);
      assert.deepEqual(run.slice(0, 1), ["run"]);
      const ctnr = (...args: string[]) =>
        runCommand(Deno.execPath(), [...run, ...args], {
          timeoutMs: DENO_CHILD_TIMEOUT_MS,
          cwd: `${dir}/cwd`, // no deno.json here or above
          env,
        });
      // The version is read from deno.json, served beside cli.ts as text/plain too.
      const version = await ctnr("--version");
      assert.equal(version.stdout.trim(), `ctnr ${denoJson.version}`, version.stderr);
      const created = await ctnr("create", "--tqdm", `${dir}/src`, "c.ctnr");
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stderr, /^ctnr: progress: writing 701 files \| /m);
      assert.match(created.stdout, /Added 701 entries/);
      const extracted = await ctnr("extract", "--tqdm", "c.ctnr", `${dir}/out`);
      assert.equal(extracted.code, 0, extracted.stderr);
      assert.match(extracted.stderr, /^ctnr: progress: writing 100% \| 701\/701 entries \| /m);
      assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
      for (const stderr of [created.stderr, extracted.stderr]) {
        for (const name of testOnly) assert.ok(!stderr.includes(`/${name}`), `${name} fetched`);
        assert.ok(!stderr.includes("\x1b"), "no control codes on a pipe");
      }
    });
  });
});

Deno.test("deno install -g from a URL as the README says: the installed ctnr creates, extracts, tells its version", async () => {
  await withTempDir(async (dir) => {
    await bigTree(`${dir}/src`);
    await Deno.mkdir(`${dir}/cwd`);
    const { runtime } = await npmPackages();
    const denoBin = Deno.execPath().slice(0, Deno.execPath().lastIndexOf("/"));
    const env = {
      DENO_DIR: await seededCache(dir, runtime),
      NO_COLOR: "1",
      // The installed script runs `deno` from PATH.
      PATH: `${denoBin}:${Deno.env.get("PATH") ?? "/usr/bin:/bin"}`,
    };
    const root = `${dir}/root`;
    await serveProject(async (base) => {
      const { install } = await readmeLines(base);
      assert.deepEqual(install.slice(0, 2), ["install", "-g"]);
      const installed = await runCommand(
        Deno.execPath(),
        [...install.slice(0, -1), "--root", root, install.at(-1)!],
        { timeoutMs: DENO_CHILD_TIMEOUT_MS, cwd: `${dir}/cwd`, env },
      );
      assert.equal(installed.code, 0, installed.stderr);
      const ctnr = (...args: string[]) =>
        runCommand(`${root}/bin/ctnr`, args, {
          timeoutMs: DENO_CHILD_TIMEOUT_MS,
          cwd: `${dir}/cwd`,
          env,
        });
      const { version } = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
      const told = await ctnr("--version");
      assert.equal(told.code, 0, told.stderr);
      assert.equal(told.stdout.trim(), `ctnr ${version}`);
      const created = await ctnr("create", `${dir}/src`, "c.ctnr", "--finalize");
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, /Added 701 entries/);
      const extracted = await ctnr("extract", "--tqdm", "c.ctnr", `${dir}/out`);
      assert.equal(extracted.code, 0, extracted.stderr);
      assert.match(extracted.stderr, /^ctnr: progress: writing 100% \| 701\/701 entries \| /m);
      assert.deepEqual(await diffTrees(`${dir}/src`, `${dir}/out`), []);
      // The permissions the README gives are the ones the installed command runs with.
      const shm = await ctnr("create", `${dir}/src`, "/dev/shm/ctnr-install-test-never.ctnr");
      assert.equal(shm.code, 2, shm.stderr);
      assert.match(shm.stderr, /run ctnr with --allow-all/);
    });
  });
});

Deno.test("a run in the project folder downloads no package that only the tests use", async () => {
  const { runtime, testOnly } = await npmPackages();
  assert.ok(testOnly.has("fast-check"), [...testOnly].join(", "));
  await withTempDir(async (dir) => {
    await bigTree(`${dir}/src`);
    // A cache that holds the runtime's packages only, as after a first run: Deno would install
    // every package of a lockfile in force (the tests' too) as soon as the run uses npm.
    const denoDir = await seededCache(dir, runtime);
    const ran = await runCommand(
      Deno.execPath(),
      ["run", "-A", "cli.ts", "create", "--progress", `${dir}/src`, `${dir}/c.ctnr`],
      { timeoutMs: DENO_CHILD_TIMEOUT_MS, cwd: ROOT, env: { DENO_DIR: denoDir, NO_COLOR: "1" } },
    );
    assert.equal(ran.code, 0, ran.stderr);
    assert.doesNotMatch(ran.stderr, /Download/, "nothing fetched");
    for (const name of testOnly) {
      const cached = await Deno.stat(`${denoDir}/npm/registry.npmjs.org/${name}`).then(
        () => true,
        () => false,
      );
      assert.equal(cached, false, `${name} is in the cache`);
    }
  });
});

/**
 * A Deno cache under `dir` holding only `packages`, copied from this machine's npm cache (those
 * it lacks are fetched by the run).
 *
 * @returns the cache's folder, for `DENO_DIR`
 */
async function seededCache(dir: string, packages: Set<string>): Promise<string> {
  const info = await runCommand(Deno.execPath(), ["info", "--json"], {
    timeoutMs: DENO_CHILD_TIMEOUT_MS,
  });
  const from = `${JSON.parse(info.stdout).npmCache}/registry.npmjs.org`;
  const denoDir = `${dir}/deno_dir`;
  for (const name of packages) {
    const source = `${from}/${name}`;
    if (!(await Deno.stat(source).then(() => true, () => false))) continue;
    const target = `${denoDir}/npm/registry.npmjs.org/${name}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    const copied = await runCommand("cp", ["-R", source, target], { timeoutMs: TOOL_TIMEOUT_MS });
    assert.equal(copied.code, 0, copied.stderr);
  }
  return denoDir;
}

/**
 * The npm packages the runtime code (cli.ts, cli/, lib/, mod.ts) imports, and those only the
 * tests import, each with its dependencies as deno.lock records them.
 */
async function npmPackages(): Promise<{ runtime: Set<string>; testOnly: Set<string> }> {
  const imported = async (paths: string[]) => {
    const names = new Set<string>();
    for (const path of paths) {
      const info = await Deno.stat(path);
      const files = info.isDirectory
        ? [...Deno.readDirSync(path)].filter((e) => e.name.endsWith(".ts")).map((e) =>
          `${path}/${e.name}`
        )
        : [path];
      for (const file of files) {
        const text = await Deno.readTextFile(file);
        for (const m of text.matchAll(/"npm:(@?[^@"]+)@/g)) names.add(m[1]!);
      }
    }
    return names;
  };
  const lock = JSON.parse(await Deno.readTextFile(`${ROOT}deno.lock`)) as {
    npm?: Record<string, { dependencies?: string[] }>;
  };
  const dependencies = (name: string) =>
    Object.entries(lock.npm ?? {}).find(([key]) => key.startsWith(`${name}@`))?.[1]
      .dependencies ?? [];
  const closure = (names: Set<string>, skip: Set<string>) => {
    const out = new Set<string>();
    const visit = (name: string) => {
      if (out.has(name) || skip.has(name)) return;
      out.add(name);
      for (const dep of dependencies(name)) visit(dep.replace(/(.)@[^@]*$/, "$1"));
    };
    for (const name of names) visit(name);
    return out;
  };
  const runtimeCode = [`${ROOT}cli.ts`, `${ROOT}mod.ts`, `${ROOT}cli`, ...libFolders()];
  const runtime = closure(await imported(runtimeCode), new Set());
  return { runtime, testOnly: closure(await imported([`${ROOT}tests`]), runtime) };
}

function libFolders(): string[] {
  const out: string[] = [];
  const walk = (path: string) => {
    out.push(path);
    for (const entry of Deno.readDirSync(path)) {
      if (entry.isDirectory) walk(`${path}/${entry.name}`);
    }
  };
  walk(`${ROOT}lib`);
  return out;
}
