/**
 * What the CLI prints, line by line: a closed standard output ends a run
 * quietly with 141 (never counted as a fault of an entry), and every error or
 * warning is one line on stderr starting with `ctnr:`, whatever the names in
 * it hold (README "Output for scripts").
 */

import assert from "node:assert/strict";
import { main } from "../cli.ts";
import { StdoutClosed } from "../cli/output.ts";
import { ContainerWriter } from "../mod.ts";
import { listPaths, runCli, withTempDir } from "./_helpers.ts";

/** Run the CLI in-process with a standard output that closes after `lines` lines (`| head`). */
async function runClosing(lines: number, ...args: string[]) {
  let stdout = "";
  let stderr = "";
  let printed = 0;
  const code = await main(args, {
    stdout: (text) => {
      if (printed++ >= lines) throw new StdoutClosed();
      stdout += text + "\n";
    },
    stderr: (text) => stderr += text + "\n",
    writeBytes: () => Promise.reject(new StdoutClosed()),
    isTerminal: false,
  });
  return { code, stdout, stderr };
}

/** A container of 1,200 small files in three folders (enough for the write workers). */
async function manyFiles(path: string): Promise<void> {
  const writer = await ContainerWriter.open(path);
  for (let i = 0; i < 1200; i++) {
    await writer.addFile({ relpath: `d${i % 3}/f${i}.txt` }, new TextEncoder().encode(`${i}`));
  }
  await writer.finalize();
}

Deno.test("main extract and verify -vv into a closed stdout stop quietly with 141, no entry counted failed", async () => {
  await withTempDir(async (dir) => {
    const c = `${dir}/c.ctnr`;
    await manyFiles(c);
    const runs: [string, string[]][] = [
      ["o1", ["extract", c, `${dir}/o1`, "-vv"]],
      ["o2", ["extract", c, `${dir}/o2`, "-vv", "--keep-going"]],
      ["o3", ["extract", c, `${dir}/o3`, "-vv", "--keep-going", "--concurrency", "0"]],
      ["o4", ["extract", c, `${dir}/o4`, "-vv", "--salvage"]],
      ["", ["verify", c, "-vv"]],
      ["", ["verify", c, "-vv", "--salvage"]],
    ];
    for (const [out, args] of runs) {
      const run = await runClosing(1, ...args);
      assert.equal(run.code, 141, `${args.join(" ")}: ${run.stderr}`);
      assert.equal(run.stderr, "", args.join(" "));
      assert.equal(run.stdout.split("\n").length, 2, args.join(" "));
      if (out === "") continue;
      const paths = await listPaths(`${dir}/${out}`);
      // Stopped early, the lock released, no temp file left.
      assert.ok(paths.length < 1200 + 3, `${args.join(" ")}: ${paths.length} paths`);
      assert.deepEqual(paths.filter((p) => p.includes(".ctnr-")), [], args.join(" "));
    }
  });
});

/** Every line of stderr starts with `ctnr:` (a usage error's hint aside). */
function assertOneLineEach(stderr: string, what: string): void {
  const lines = stderr.split("\n").filter((line) => line !== "");
  for (const line of lines) {
    assert.ok(line.startsWith("ctnr: ") || line.startsWith("Run "), `${what}: ${stderr}`);
  }
}

Deno.test("main prints each error and warning on one line, a newline in a name escaped", async () => {
  await withTempDir(async (dir) => {
    const evil = "evil\nctnr: verify: all fine";
    // A FIFO left out with a warning by create.
    await Deno.mkdir(`${dir}/w`);
    const fifo = await new Deno.Command("mkfifo", { args: [`${dir}/w/${evil}`] }).output();
    assert.ok(fifo.success);
    const create = await runCli("create", `${dir}/w`, `${dir}/w.ctnr`);
    assert.equal(create.code, 0, create.stderr);
    assert.equal(create.stderr.split("\n").length, 2, create.stderr);
    assert.match(create.stderr, /^ctnr: warning: .*"evil\\nctnr: verify: all fine"/);
    // An entry named with a newline whose payload fails its SHA-256: verify, extract, cat.
    const c = `${dir}/c.ctnr`;
    const writer = await ContainerWriter.open(c);
    await writer.addFile({ relpath: "new\nline" }, new TextEncoder().encode("payload"));
    await writer.finalize();
    const bytes = await Deno.readFile(c);
    bytes[0] = bytes[0]! ^ 1;
    await Deno.writeFile(c, bytes);
    for (
      const args of [
        ["verify", c],
        ["extract", c, `${dir}/out`],
        ["extract", c, `${dir}/out2`, "--keep-going"],
        ["cat", c, "new\nline"],
        ["cat", c, "x\ny"],
        ["list", c, "x\ny"],
      ]
    ) {
      const run = await runCli(...args);
      assert.equal(run.code, 1, `${args.join(" ")}: ${run.stderr}`);
      assertOneLineEach(run.stderr, args.join(" "));
      assert.match(run.stderr, /"(new\\nline|x\\ny)"/, args.join(" "));
    }
    // Several links pointing outside: one error, in one line.
    const links = `${dir}/links.ctnr`;
    const linkWriter = await ContainerWriter.open(links);
    await linkWriter.addSymlink({ relpath: "l1" }, "/etc/passwd");
    await linkWriter.addSymlink({ relpath: "l\n2" }, "../x");
    await linkWriter.finalize();
    const extract = await runCli("extract", links, `${dir}/out3`);
    assert.equal(extract.code, 1, extract.stderr);
    assert.equal(extract.stderr.split("\n").length, 2, extract.stderr);
    assert.match(
      extract.stderr,
      /^ctnr: Cannot extract: 2 symlinks point outside the output folder \(pass --allow-unsafe-links .*--keep-going.*\): "l1" -> "\/etc\/passwd", "l\\n2" -> "\.\.\/x"\n$/,
    );
  });
});
