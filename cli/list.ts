/**
 * `ctnr list`: the entries of a container, one line each (or NDJSON).
 *
 * @module
 */

import { encodeEntry, Selection } from "../mod.ts";
import { reportUnmatched } from "./extract.ts";
import { type CommandSpec, helpText, parseCommand } from "./flags.ts";
import { type CliIo, describe } from "./output.ts";
import { openReader } from "./_reader.ts";

/** The flags of `list`. */
export const LIST = {
  name: "list",
  usage: "ctnr list --container FILE [--index FILE] [--json] [--lenient] [PATTERN...]",
  flags: [
    { name: "container", type: "string", arg: "FILE", origin: "ctnr", help: "container to read" },
    {
      name: "index",
      type: "string",
      arg: "FILE",
      origin: "ctnr",
      option: "index",
      help: "external index (preferred over the embedded one)",
    },
    {
      name: "json",
      type: "boolean",
      origin: "ctnr",
      help: "print each entry as its index line (NDJSON)",
    },
    {
      name: "lenient",
      type: "boolean",
      origin: "ctnr",
      option: "lenient",
      help: "skip malformed index lines with a warning",
    },
  ],
} as const satisfies CommandSpec;

/**
 * Run `ctnr list`.
 *
 * @param args arguments after `list`
 * @param io where to print
 * @returns the exit code
 */
export async function runList(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(LIST, args);
  if (values.help) {
    io.stdout(helpText(LIST));
    return 0;
  }
  const rest = [...positionals];
  const container = values.container ?? rest.shift();
  // What is left are patterns (README "Selecting entries").
  const select = rest.length > 0 ? new Selection(rest) : undefined;
  const reader = await openReader(container, values.index, values.lenient, io);
  try {
    if (select !== undefined) await reader.takeLiterally(select);
    for await (const entry of reader.entries(select === undefined ? {} : { select })) {
      io.stdout(values.json ? encodeEntry(entry).trimEnd() : describe(entry));
    }
  } finally {
    reader.close();
  }
  return reportUnmatched(select, io) ? 1 : 0;
}
