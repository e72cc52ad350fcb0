/**
 * The standing mutation check (`deno task mutants`): each mutant of
 * tests/mutants/mutants.ts breaks one safety- or durability-critical line of
 * lib/ or cli.ts, in a scratch copy of the project, and the fast test named
 * for it must then fail. A mutant whose test still passes "survived": the
 * suite would not notice that line being lost.
 *
 * ```sh
 * deno task mutants                    # every mutant; exit 1 when one survives
 * deno task mutants --only NAME,NAME   # some of them
 * deno task mutants --list             # names and killing tests
 * deno task mutants --discover NAME    # run the whole suite on one mutant: which tests kill it
 * ```
 *
 * Each mutant's text must occur exactly once in the sources (lib/, cli/, cli.ts, mod.ts), so a mutant
 * whose line moved or changed is an error, not a silent pass: move the
 * mutant with the code. Tests run with `--no-check`: a kill must come from
 * behaviour, not from the type checker.
 *
 * @module
 */

import { dirname, join, relative } from "node:path";
import { type Mutant, MUTANTS } from "./mutants.ts";

const ROOT = join(dirname(new URL(import.meta.url).pathname), "..", "..");
/** Longest a killing test may run; a mutant that makes it hang counts as killed by timeout. */
const TIMEOUT_MS = 180_000;
const SOURCES = ["lib", "cli", "cli.ts", "mod.ts"];
const COPY_EXCLUDE = new Set([".git", "dist", "node_modules", "coverage"]);

interface Outcome {
  mutant: Mutant;
  result: "killed" | "survived" | "error";
  detail: string;
  seconds: number;
}

if (import.meta.main) Deno.exit(await main(Deno.args));

async function main(args: string[]): Promise<number> {
  const only = valueOf(args, "--only")?.split(",");
  const discover = valueOf(args, "--discover");
  const jobs = Number(valueOf(args, "--jobs") ?? "2");
  const sources = await readSources();
  const located = MUTANTS.map((mutant) => ({ mutant, where: locate(mutant, sources) }));
  const misplaced = located.filter(({ where }) => typeof where === "string");
  if (args.includes("--list")) {
    for (const { mutant } of located) {
      console.log(`${mutant.name}\t${mutant.killedBy.file}\t${mutant.killedBy.test}`);
    }
    return 0;
  }
  const names = new Set(MUTANTS.map((m) => m.name));
  if (names.size !== MUTANTS.length) throw new Error("Two mutants share a name");
  for (const name of [...(only ?? []), ...(discover ? [discover] : [])]) {
    if (!names.has(name)) throw new Error(`No mutant named "${name}"`);
  }
  if (discover) return await discoverKillers(located.find((l) => l.mutant.name === discover)!);

  const chosen = located.filter(({ mutant }) => only === undefined || only.includes(mutant.name));
  const started = performance.now();
  console.log(`mutation check: ${chosen.length} mutants, ${jobs} at a time`);
  const outcomes: Outcome[] = misplaced
    .filter(({ mutant }) => chosen.some((c) => c.mutant === mutant))
    .map(({ mutant, where }) => ({
      mutant,
      result: "error",
      detail: where as string,
      seconds: 0,
    }));
  const runnable = chosen.filter(({ where }) => typeof where !== "string") as {
    mutant: Mutant;
    where: Location;
  }[];
  const baseline = await checkBaseline(runnable.map(({ mutant }) => mutant));
  const queue = runnable.filter(({ mutant }) => {
    const broken = baseline.get(testKey(mutant));
    if (broken === undefined) return true;
    outcomes.push({ mutant, result: "error", detail: broken, seconds: 0 });
    return false;
  });
  await Promise.all(Array.from({ length: Math.max(1, jobs) }, async () => {
    const copy = await copyProject();
    try {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        const outcome = await runMutant(copy, next.mutant, next.where);
        outcomes.push(outcome);
        console.log(
          `${outcome.result.padEnd(8)} ${outcome.mutant.name} (${outcome.seconds.toFixed(1)} s)` +
            (outcome.detail === "" ? "" : `: ${outcome.detail}`),
        );
      }
    } finally {
      await Deno.remove(copy, { recursive: true });
    }
  }));
  const count = (result: Outcome["result"]) => outcomes.filter((o) => o.result === result).length;
  const minutes = (performance.now() - started) / 60_000;
  console.log(
    `mutants: ${count("killed")} killed, ${count("survived")} survived, ${count("error")} errors ` +
      `(${minutes.toFixed(1)} min)`,
  );
  for (const outcome of outcomes.filter((o) => o.result !== "killed")) {
    console.log(`  ${outcome.result}: ${outcome.mutant.name}: ${outcome.detail}`);
  }
  return count("survived") + count("error") === 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------

interface Location {
  file: string;
  text: string;
}

async function readSources(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const visit = async (path: string) => {
    const info = await Deno.stat(join(ROOT, path));
    if (info.isDirectory) {
      for await (const item of Deno.readDir(join(ROOT, path))) await visit(join(path, item.name));
    } else if (path.endsWith(".ts")) files.set(path, await Deno.readTextFile(join(ROOT, path)));
  };
  for (const path of SOURCES) await visit(path);
  return files;
}

/** The one file holding the mutant's text, or why it cannot be applied. */
function locate(mutant: Mutant, sources: Map<string, string>): Location | string {
  const hits: string[] = [];
  for (const [file, text] of sources) {
    for (let at = text.indexOf(mutant.find); at >= 0; at = text.indexOf(mutant.find, at + 1)) {
      hits.push(file);
    }
  }
  if (hits.length === 1) return { file: hits[0]!, text: sources.get(hits[0]!)! };
  return hits.length === 0
    ? "its text is not in lib/, cli/, cli.ts or mod.ts (the code moved or changed: update tests/mutants/mutants.ts)"
    : `its text occurs ${hits.length} times (${hits.join(", ")}): give more context`;
}

function testKey(mutant: Mutant): string {
  return `${mutant.killedBy.file}\0${mutant.killedBy.test}`;
}

/** A test name as an anchored `deno test --filter` pattern. */
function exactFilter(name: string): string {
  return `/^${name.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$/`;
}

/**
 * Run each killing test once on the unchanged project: a test that fails (or matches no test)
 * there cannot judge a mutant. Tests of one file run in one call.
 *
 * @returns per test key, why it cannot be used
 */
async function checkBaseline(mutants: Mutant[]): Promise<Map<string, string>> {
  const byFile = new Map<string, Set<string>>();
  for (const { killedBy } of mutants) {
    byFile.set(killedBy.file, (byFile.get(killedBy.file) ?? new Set()).add(killedBy.test));
  }
  const broken = new Map<string, string>();
  for (const [file, tests] of byFile) {
    const names = [...tests];
    const pattern = `/^(${
      names.map((n) => n.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")).join("|")
    })$/`;
    const run = await denoTest(ROOT, file, pattern);
    for (const name of names) {
      const key = `${file}\0${name}`;
      if (run.timedOut) broken.set(key, `its file timed out unchanged: ${run.tail}`);
      else if (!run.ran.has(name)) broken.set(key, `no test "${name}" in ${file}`);
      else if (run.failed.has(name)) broken.set(key, `"${name}" fails on the unchanged code`);
    }
  }
  console.log(`baseline: ${byFile.size} test files, ${broken.size} unusable tests`);
  return broken;
}

async function runMutant(copy: string, mutant: Mutant, where: Location): Promise<Outcome> {
  const started = performance.now();
  const path = join(copy, where.file);
  await Deno.writeTextFile(path, where.text.replace(mutant.find, () => mutant.replace));
  try {
    const run = await denoTest(copy, mutant.killedBy.file, exactFilter(mutant.killedBy.test));
    const seconds = (performance.now() - started) / 1000;
    if (run.timedOut) return { mutant, result: "killed", detail: "by timeout", seconds };
    if (run.crashed) {
      return { mutant, result: "killed", detail: "by an uncaught error in the test", seconds };
    }
    if (!run.ran.has(mutant.killedBy.test)) {
      return { mutant, result: "error", detail: `the test did not run: ${run.tail}`, seconds };
    }
    return run.failed.size > 0
      ? { mutant, result: "killed", detail: "", seconds }
      : { mutant, result: "survived", detail: `"${mutant.killedBy.test}" passed`, seconds };
  } finally {
    await Deno.writeTextFile(path, where.text);
  }
}

interface TestRun {
  ran: Set<string>;
  failed: Set<string>;
  timedOut: boolean;
  /** The process failed after its tests started and before any reported a result. */
  crashed: boolean;
  tail: string;
}

/** `deno test --no-check` of one file in `root`, filtered; which top-level tests ran and failed. */
async function denoTest(root: string, file: string, filter: string): Promise<TestRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", "--no-check", "--filter", filter, join("tests", file)],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, TIMEOUT_MS);
  const output = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  const ran = new Set<string>();
  const failed = new Set<string>();
  // Top-level results: "name ... ok (12ms)" / "name ... FAILED (3ms)" at the start of a line.
  for (const match of text.matchAll(/^(\S.*?) \.\.\. (ok|FAILED|ignored)\b/gm)) {
    if (match[2] === "ignored") continue;
    ran.add(match[1]!);
    if (match[2] === "FAILED") failed.add(match[1]!);
  }
  if (!output.success && failed.size === 0 && ran.size > 0 && !timedOut) {
    // The process failed outside any test (an uncaught error): count it against every test run.
    for (const name of ran) failed.add(name);
  }
  // An uncaught error raised while the test ran ends the process before its result line: the
  // mutant made the test fail, as a failed assertion does. (A mutant that does not load never
  // reaches "running N tests".)
  const crashed = !output.success && !timedOut && ran.size === 0 &&
    /^running \d+ tests? from /m.test(text);
  return {
    ran,
    failed,
    timedOut,
    crashed,
    tail: text.trim().split("\n").slice(-3).join(" | "),
  };
}

/** Copy the project (without .git) to a scratch folder the mutants are applied in. */
async function copyProject(): Promise<string> {
  const copy = await Deno.makeTempDir({ prefix: "ctnr-mutants-" });
  const visit = async (path: string) => {
    for await (const item of Deno.readDir(join(ROOT, path))) {
      if (COPY_EXCLUDE.has(item.name)) continue;
      const rel = join(path, item.name);
      if (item.isDirectory) {
        await Deno.mkdir(join(copy, rel));
        await visit(rel);
      } else if (item.isFile) await Deno.copyFile(join(ROOT, rel), join(copy, rel));
      else if (item.isSymlink) {
        await Deno.symlink(await Deno.readLink(join(ROOT, rel)), join(copy, rel));
      }
    }
  };
  await visit("");
  return copy;
}

/** Run every test file on one mutant and list the tests that fail, fastest first. */
async function discoverKillers(
  { mutant, where }: { mutant: Mutant; where: Location | string },
): Promise<number> {
  if (typeof where === "string") {
    console.log(`${mutant.name}: ${where}`);
    return 1;
  }
  const copy = await copyProject();
  try {
    await Deno.writeTextFile(
      join(copy, where.file),
      where.text.replace(mutant.find, () => mutant.replace),
    );
    const junit = join(copy, "junit.xml");
    const child = await new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        "--allow-all",
        "--no-check",
        "--reporter=dot",
        `--junit-path=${junit}`,
        "tests/",
      ],
      cwd: copy,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).output();
    const xml = await Deno.readTextFile(junit);
    const killers: [number, string, string][] = [];
    for (
      const match of xml.matchAll(
        /<testcase name="([^"]*)" classname="([^"]*)" time="([\d.]+)"[^>]*>\s*<failure/g,
      )
    ) {
      killers.push([
        Number(match[3]),
        // junit's classname is relative to the run's folder (`./tests/x_test.ts`).
        relative(join(copy, "tests"), join(copy, match[2]!)),
        unescapeXml(match[1]!),
      ]);
    }
    killers.sort((a, b) => a[0] - b[0]);
    console.log(`${mutant.name}: ${killers.length} failing tests (suite exit ${child.code})`);
    for (const [seconds, file, name] of killers) {
      console.log(`  ${seconds.toFixed(2)} s  ${file}  ${name}`);
    }
    return 0;
  } finally {
    await Deno.remove(copy, { recursive: true });
  }
}

function unescapeXml(text: string): string {
  return text.replaceAll("&quot;", '"').replaceAll("&apos;", "'").replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">").replaceAll("&amp;", "&");
}

function valueOf(args: string[], flag: string): string | undefined {
  const at = args.indexOf(flag);
  return at >= 0 ? args[at + 1] : undefined;
}
