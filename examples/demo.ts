/**
 * The main job on a built-in sample: copy the sample tree (the one the
 * original tools' fixtures were made from) into a temp folder, add an empty
 * folder and a symlink, pack it with `ctnr create --compress --finalize`,
 * extract it with `ctnr extract`, and compare with `diff -r` plus modes and
 * mtimes. Exits non-zero on any difference.
 *
 * Run: `deno task demo`
 *
 * @module
 */

import { main } from "../cli.ts";

const sample = new URL("../tests/fixtures/peer/src", import.meta.url).pathname;
const work = await Deno.makeTempDir({ prefix: "ctnr-demo-" });
const src = `${work}/src`;
try {
  await copyTree(sample, src);
  await Deno.mkdir(`${src}/emptydir/inner`, { recursive: true });
  await Deno.symlink("../hello.txt", `${src}/docs/hello-link`);
  await Deno.utime(`${src}/docs/readme.md`, 981173106, 981173106);

  const run = async (...args: string[]) => {
    console.log(`$ ctnr ${args.join(" ")}`);
    const code = await main(args);
    if (code !== 0) throw new Error(`ctnr ${args[0]} exited ${code}`);
  };
  await run(
    "create",
    "--src",
    src,
    "--container",
    `${work}/sample.ctnr`,
    "--compress",
    "--finalize",
  );
  await run("list", "-l", "--container", `${work}/sample.ctnr`);
  await run("extract", "--container", `${work}/sample.ctnr`, "--outdir", `${work}/out`);

  const diff = await new Deno.Command("diff", {
    args: ["-r", "--no-dereference", src, `${work}/out`],
  })
    .output();
  if (!diff.success) {
    console.error(new TextDecoder().decode(diff.stdout));
    throw new Error("diff -r found differences");
  }
  for (const rel of ["hello.txt", "docs/readme.md", "emptydir/inner"]) {
    const a = await Deno.lstat(`${src}/${rel}`);
    const b = await Deno.lstat(`${work}/out/${rel}`);
    if (a.mode !== b.mode || a.mtime?.getTime() !== b.mtime?.getTime()) {
      throw new Error(`mode or mtime of "${rel}" differs`);
    }
  }
  console.log(`\ndiff -r: no difference; modes and mtimes kept. (work folder: ${work})`);
  await Deno.remove(work, { recursive: true });
} catch (error) {
  console.error(`demo failed: ${(error as Error).message}\nwork folder kept: ${work}`);
  Deno.exit(1);
}

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const item of Deno.readDir(from)) {
    const a = `${from}/${item.name}`;
    const b = `${to}/${item.name}`;
    if (item.isDirectory) await copyTree(a, b);
    else if (item.isFile) {
      await Deno.copyFile(a, b);
      await Deno.chmod(b, ((await Deno.stat(a)).mode ?? 0o644) & 0o777 | 0o200);
    }
  }
}
