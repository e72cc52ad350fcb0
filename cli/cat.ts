/**
 * `ctnr cat`: files of a container to standard output, verified: the one an exact relpath
 * names, or each file that patterns select, in index order (as `tar -xOf`).
 *
 * @module
 */

import { type ContainerReader, type IndexEntry, Selection, UsageError } from "../mod.ts";
import { reportUnmatched } from "./extract.ts";
import { type CommandSpec, helpText, parseCommand } from "./flags.ts";
import type { CliIo } from "./output.ts";
import { CONTAINER_FLAG, INDEX_FLAG, openReader } from "./_reader.ts";

/** The flags of `cat`. */
export const CAT = {
  name: "cat",
  usage: "ctnr cat --container FILE [--index FILE] PATTERN...  (writes each file it selects\n" +
    "to stdout, in index order; an exact RELPATH is that file)",
  flags: [
    CONTAINER_FLAG,
    INDEX_FLAG,
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
  if (rest.length === 0) throw new UsageError("Missing PATTERN (a relpath, or patterns)");
  // Patterns select files only: a folder entry or a link is not matched, so a pattern that
  // names only those is reported as selecting no file.
  const select = new Selection(rest);
  const reader = await openReader(container, values.index, false, io);
  try {
    await reader.takeLiterally(select);
    for await (const entry of reader.records()) {
      if (entry.entry.entryType !== "file" || !select.matches(entry.entry.relpath)) continue;
      await writeFile(reader, entry.entry, io);
    }
  } finally {
    reader.close();
  }
  return reportUnmatched(select, io, "file") ? 1 : 0;
}

/** Write one file entry to stdout, verified. */
async function writeFile(reader: ContainerReader, entry: IndexEntry, io: CliIo): Promise<void> {
  if (entry.origSize <= CAT_VERIFY_FIRST) {
    // Small enough to hold: verify all of it before writing a byte.
    const held: Uint8Array[] = [];
    for await (const piece of reader.open(entry)) held.push(piece);
    for (const piece of held) await io.writeBytes(piece);
  } else {
    // Streamed: a fault stops the output midway and exits 1 (see README).
    for await (const piece of reader.open(entry)) await io.writeBytes(piece);
  }
}
