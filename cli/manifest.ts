/**
 * `ctnr manifest merge --out FILE PART_MANIFEST...`: join the manifests of a set's parts
 * (`create --part K/N`) into one (lib/shard/merge.ts).
 *
 * @module
 */

import { UsageError } from "../mod.ts";
import { mergeManifests } from "../lib/shard/merge.ts";
import { type CommandSpec, helpText, parseCommand } from "./flags.ts";
import { type CliIo, printable } from "./output.ts";
import { count } from "./units.ts";

/** The flags of `manifest`. */
export const MANIFEST = {
  name: "manifest",
  usage: "ctnr manifest merge --out FILE PART_MANIFEST...  (joins the manifests of\n" +
    "create --part K/N into one; refuses parts that do not make one tree)",
  flags: [
    {
      name: "out",
      type: "string",
      arg: "FILE",
      origin: "ctnr",
      help: "the merged manifest to write (NAME.manifest.json, beside the parts')",
    },
  ],
} as const satisfies CommandSpec;

/**
 * Run `ctnr manifest`.
 *
 * @param args arguments after `manifest`
 * @param io where to print
 * @returns the exit code
 */
export async function runManifest(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(MANIFEST, args);
  if (values.help) {
    io.stdout(helpText(MANIFEST));
    return 0;
  }
  const [action, ...parts] = positionals;
  if (action !== "merge") {
    throw new UsageError(
      action === undefined ? "Missing the action: merge" : `Unknown action "${action}" (merge)`,
    );
  }
  if (values.out === undefined) throw new UsageError("Missing --out FILE");
  if (parts.length === 0) throw new UsageError("Missing PART_MANIFEST...");
  const merged = await mergeManifests(values.out, parts);
  io.stderr(
    `Merged ${count(merged.parts.length, "part")}, ${count(merged.shards.length, "shard")}, ${
      count(merged.entries, "entry", "entries")
    } into ${printable(values.out)}`,
  );
  return 0;
}
