/**
 * Parsing a block of whole NDJSON index lines on a worker thread, for
 * `extract`'s plan: the same checks as `IndexReader.batches` (UTF-8,
 * JSON, {@link parseEntry}, line length), answered in a compact form. Any
 * fault makes the whole block `ok: false`: the plan then reads the index
 * again on its own, in order, so that the error and its line are exactly
 * those of a sequential read.
 *
 * @module
 */

import { parseEntry } from "./format.ts";
import { utf8Length } from "./index_reader.ts";

/** A block to parse: whole lines, each ending with `\n`. */
export interface ParseRequest {
  block: Uint8Array;
  /** Longest line allowed, in bytes. */
  maxLine: number;
}

/**
 * The entries of a block, in order: `relpaths` joined by NUL (a relpath never holds one);
 * `numbers` 4 per entry (kind 0 file, 1 folder, 2 symlink; offset; payload size; original
 * size); each symlink's line as text with its line number within the block (1-based), since
 * the plan needs the whole entry; `lines` counts every line, blank ones too.
 */
export type ParsedBlock =
  | {
    ok: true;
    lines: number;
    relpaths: string;
    numbers: Float64Array<ArrayBuffer>;
    links: string[];
    linkLines: number[];
  }
  | { ok: false };

const KIND = { file: 0, dir: 1, symlink: 2 } as const;

/** {@link ParsedBlock}'s code of a folder entry. */
export const DIR_KIND = KIND.dir;

/**
 * Parse and check a block of index lines.
 *
 * @param request the block and the longest line allowed
 * @returns the entries, or `ok: false` when any line is faulty
 */
export function parseLineBlock({ block, maxLine }: ParseRequest): ParsedBlock {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(block);
  } catch {
    return { ok: false };
  }
  const relpaths: string[] = [];
  const numbers: number[] = [];
  const links: string[] = [];
  const linkLines: number[] = [];
  let lines = 0;
  for (let from = 0; from < text.length;) {
    let to = text.indexOf("\n", from);
    if (to < 0) to = text.length; // not sent so: the block ends with a newline
    const line = text.slice(from, to);
    from = to + 1;
    lines++;
    if (line.length > maxLine || (line.length * 3 > maxLine && utf8Length(line) > maxLine)) {
      return { ok: false };
    }
    if (line.trim() === "") continue;
    let entry;
    try {
      entry = parseEntry(JSON.parse(line), "index");
    } catch {
      return { ok: false };
    }
    relpaths.push(entry.relpath);
    numbers.push(KIND[entry.entryType], entry.offset, entry.payloadSize, entry.origSize);
    if (entry.entryType === "symlink") {
      links.push(line);
      linkLines.push(lines);
    }
  }
  return {
    ok: true,
    lines,
    relpaths: relpaths.join("\0"),
    numbers: Float64Array.from(numbers),
    links,
    linkLines,
  };
}
