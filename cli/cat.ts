/**
 * `ctnr cat`: one file of a container to standard output, verified.
 *
 * @module
 */

import { CtnrError, UsageError } from "../mod.ts";
import { type CommandSpec, helpText, parseCommand } from "./flags.ts";
import type { CliIo } from "./output.ts";
import { openReader } from "./_reader.ts";

/** The flags of `cat`. */
export const CAT = {
  name: "cat",
  usage: "ctnr cat --container FILE [--index FILE] RELPATH  (writes the file to stdout)",
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
  ],
} as const satisfies CommandSpec;

/** Largest file `cat` verifies whole before writing a byte of it. */
const CAT_VERIFY_FIRST = 64 << 20;

/**
 * Run `ctnr cat`.
 *
 * @param args arguments after `cat`
 * @param io where to print
 * @returns the exit code
 */
export async function runCat(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(CAT, args);
  if (values.help) {
    io.stdout(helpText(CAT));
    return 0;
  }
  const rest = [...positionals];
  const container = values.container ?? rest.shift();
  const relpath = rest.shift();
  if (relpath === undefined) throw new UsageError("Missing RELPATH");
  if (rest.length > 0) throw new UsageError(`Unexpected argument "${rest[0]}"`);
  const reader = await openReader(container, values.index, false, io);
  try {
    const entry = await reader.find(relpath);
    if (entry === undefined) {
      throw new CtnrError("NOT_FOUND", `No entry "${relpath}" in "${container}"`);
    }
    if (entry.entryType !== "file") {
      throw new CtnrError("NOT_FOUND", `Entry "${relpath}" is a ${entry.entryType}, not a file`);
    }
    if (entry.origSize <= CAT_VERIFY_FIRST) {
      // Small enough to hold: verify all of it before writing a byte.
      const held: Uint8Array[] = [];
      for await (const piece of reader.open(entry)) held.push(piece);
      for (const piece of held) await io.writeBytes(piece);
    } else {
      // Streamed: a fault stops the output midway and exits 1 (see README).
      for await (const piece of reader.open(entry)) await io.writeBytes(piece);
    }
  } finally {
    reader.close();
  }
  return 0;
}
