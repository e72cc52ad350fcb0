/**
 * An occasional full mutation sweep of one module with StrykerJS (npm
 * `@stryker-mutator/core`, through its command runner): every mutant Stryker
 * can make of `MODULE`, each judged by `deno test` of `TEST_FILE`. It takes
 * minutes a module (lib/format/entry.ts: 438 mutants when it held the trailer too, about 9 minutes here), so it
 * is not part of CI; `deno task mutants` is the standing check. Survivors are
 * leads, not verdicts: many are equivalent (a fast path, a clamp no input
 * reaches).
 *
 * ```sh
 * deno task mutants:sweep lib/format/entry.ts tests/format_test.ts
 * ```
 *
 * Needs Node.js and npm (npx fetches Stryker); writes nothing in the project
 * (Stryker's sandbox and report go to a temp folder, removed at the end).
 *
 * @module
 */

import { dirname, join } from "node:path";

const ROOT = join(dirname(new URL(import.meta.url).pathname), "..", "..");
const STRYKER = "@stryker-mutator/core@9";

if (import.meta.main) {
  const [module, testFile] = Deno.args;
  if (module === undefined || testFile === undefined) {
    console.error(
      "Usage: deno task mutants:sweep MODULE TEST_FILE (e.g. lib/format/entry.ts tests/format_test.ts)",
    );
    Deno.exit(2);
  }
  const scratch = await Deno.makeTempDir({ prefix: "ctnr-stryker-" });
  let code = 1;
  try {
    const config = join(scratch, "stryker.conf.json");
    await Deno.writeTextFile(
      config,
      JSON.stringify({
        testRunner: "command",
        commandRunner: { command: `deno test --allow-all --no-check ${testFile}` },
        mutate: [module],
        reporters: ["clear-text", "progress-append-only"],
        coverageAnalysis: "off",
        concurrency: 2,
        tempDirName: join(scratch, "sandbox"),
        cleanTempDir: "always",
      }),
    );
    const run = await new Deno.Command("npx", {
      args: ["-y", STRYKER, "run", config],
      cwd: ROOT,
      stdin: "null",
    }).spawn().status;
    code = run.code;
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
  Deno.exit(code);
}
