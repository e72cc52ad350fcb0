/**
 * The planning pass of `extract`: read the whole index once, streaming,
 * and refuse it before anything is written when two entries would land on
 * the same path, when a file would sit where a folder must be, or when a
 * symlink would point outside the output folder. Memory stays bounded:
 * relpaths are kept as 96-bit hashes, not strings.
 *
 * @module
 */

import { UnsafeEntryError } from "./errors.ts";
import { type IndexEntry, parseEntry } from "./format.ts";
import { MAX_LINE_BYTES } from "./index_reader.ts";
import { DIR_KIND, type ParsedBlock, type ParseRequest } from "./_index_block.ts";
import type { ContainerReader } from "./container_reader.ts";
import { RelpathSet } from "./_relpath_set.ts";
import { FOLDER, PathGuard, pathKey } from "./_path_guard.ts";

/** Options of {@link planExtraction}. */
export interface PlanOptions {
  /** Accept symlinks whose target is absolute or leaves the output folder. @default false */
  allowUnsafeLinks?: boolean;
  /** Treat names that differ only in case as the same (case-insensitive targets). @default false */
  foldCase?: boolean;
  /**
   * Called for each symlink whose target leaves the output folder; the plan
   * then goes on (the caller skips those links). Without it, the plan reads
   * the whole index and throws one {@link UnsafeEntryError} naming them.
   */
  onUnsafeLink?: (entry: IndexEntry, error: UnsafeEntryError) => void;
}

/** What the index holds, known before anything is written. */
export interface ExtractPlan {
  /** Entries in the index. */
  entries: number;
  /** File entries. */
  files: number;
  /** Folder entries. */
  dirs: number;
  /** Symlink entries. */
  symlinks: number;
  /** Sum of `orig_size` of the files, in bytes. */
  totalBytes: number;
  /** Sum of `payload_size`, in bytes. */
  payloadBytes: number;
  /** Symlinks refused for their target (only with `onUnsafeLink`). */
  unsafeLinks: number;
}

/**
 * Validate every entry of the container's index and total it up.
 *
 * @param reader the open container
 * @param options link and case rules
 * @returns the totals
 * @throws {UnsafeEntryError} on a duplicate relpath, a file/folder clash, or an unsafe link
 * @throws {IndexFormatError} on a bad index
 * @throws {ContainerFormatError} when a payload lies past the payload area
 */
export function planExtraction(
  reader: ContainerReader,
  options: PlanOptions = {},
): Promise<ExtractPlan> {
  return planOnThisThread(reader, options);
}

/**
 * Parses a block of whole index lines elsewhere (a worker thread running `parseLineBlock`).
 * A rejected promise counts as `ok: false`.
 */
export type BlockParser = (request: ParseRequest) => Promise<ParsedBlock>;

/**
 * {@link planExtraction} with the index's lines parsed by `parser` on other threads
 * (extract's write workers, idle until the plan is done): this thread only admits the
 * entries, in order (100,000 entries: the plan 0.2 -> ~0.1 s). Any fault in a block, or an
 * index that is not plain NDJSON, sends the plan back to reading the index itself, so that
 * errors are the same either way.
 *
 * @param reader the open container
 * @param options link and case rules
 * @param parser parses a block of index lines
 * @returns the totals
 * @throws as {@link planExtraction}
 */
export async function planExtractionInParallel(
  reader: ContainerReader,
  options: PlanOptions,
  parser: BlockParser,
): Promise<ExtractPlan> {
  const state = new PlanState(reader, options);
  if (await admitBlocks(reader, parser, state)) return state.finish();
  return await planOnThisThread(reader, options);
}

async function planOnThisThread(
  reader: ContainerReader,
  options: PlanOptions,
): Promise<ExtractPlan> {
  const state = new PlanState(reader, options);
  for await (const batch of reader.recordBatches()) {
    for (const { entry } of batch) {
      state.admit(entry.relpath, entry.entryType);
      if (entry.entryType === "file") state.addFile(entry.origSize, entry.payloadSize);
      else if (entry.entryType === "symlink") state.addLink(entry);
    }
  }
  return state.finish();
}

/**
 * The parallel path of {@link planExtraction}: blocks parsed by `parser`, a few at a time,
 * admitted in index order.
 *
 * @returns `false` when the plan must read the index itself (the state is then spoiled)
 * @throws {UnsafeEntryError} on a clash, at the same entry as the sequential path
 */
async function admitBlocks(
  reader: ContainerReader,
  parser: BlockParser,
  state: PlanState,
): Promise<boolean> {
  const blocks = reader.indexLineBlocks();
  const queue: Promise<ParsedBlock>[] = [];
  const end = reader.payloadAreaEnd;
  let line = 0; // lines before the block being admitted
  const admitNext = async (): Promise<boolean> => {
    const parsed = await queue.shift()!;
    if (!parsed.ok) return false;
    const { numbers } = parsed;
    const relpaths = numbers.length === 0 ? [] : parsed.relpaths.split("\0");
    for (let i = 0; i < relpaths.length; i++) {
      const kind = numbers[i * 4]!;
      const payloadSize = numbers[i * 4 + 2]!;
      // Past the payload area: the sequential path words that error.
      if (numbers[i * 4 + 1]! + payloadSize > end) return false;
      state.admit(relpaths[i]!, kind === DIR_KIND ? "dir" : "file");
      if (kind === 0) state.addFile(numbers[i * 4 + 3]!, payloadSize);
    }
    parsed.links.forEach((text, k) => {
      state.addLink(parseEntry(JSON.parse(text), `index line ${line + parsed.linkLines[k]!}`));
    });
    line += parsed.lines;
    return true;
  };
  try {
    for (;;) {
      const next = await blocks.next();
      if (next.done) {
        if (!next.value) return false;
        break;
      }
      const request: ParseRequest = { block: next.value, maxLine: MAX_LINE_BYTES };
      queue.push(parser(request).catch((): ParsedBlock => ({ ok: false })));
      if (queue.length >= 4 && !(await admitNext())) return false;
    }
    while (queue.length > 0) if (!(await admitNext())) return false;
    return true;
  } finally {
    await blocks.return(false);
  }
}

/** Counts, the path guard and the links of a plan in progress. */
class PlanState {
  plan: ExtractPlan = {
    unsafeLinks: 0,
    entries: 0,
    files: 0,
    dirs: 0,
    symlinks: 0,
    totalBytes: 0,
    payloadBytes: 0,
  };
  #guard: PathGuard;
  #options: PlanOptions;
  #links: IndexEntry[] = [];
  #linkKeys = new RelpathSet();

  constructor(reader: ContainerReader, options: PlanOptions) {
    this.#options = options;
    this.#guard = new PathGuard(
      options.foldCase ?? false,
      PathGuard.expectedEntries(reader.indexLength),
    );
  }

  /** Admit an entry's relpath; count it as a folder, or as a link or file below. */
  admit(relpath: string, kind: IndexEntry["entryType"]): void {
    this.plan.entries++;
    const clash = this.#guard.admit(relpath, kind === "dir" ? FOLDER : 1);
    if (clash !== undefined) throw new UnsafeEntryError(`Cannot extract "${relpath}": ${clash}`);
    if (kind === "dir") this.plan.dirs++;
  }

  addFile(origSize: number, payloadSize: number): void {
    this.plan.files++;
    this.plan.totalBytes += origSize;
    this.plan.payloadBytes += payloadSize;
  }

  addLink(entry: IndexEntry): void {
    this.plan.symlinks++;
    if (this.#options.allowUnsafeLinks) return;
    this.#links.push(entry);
    this.#linkKeys.add(this.#key(entry.relpath));
  }

  /** Check the links' targets (a chain can run through a later link) and return the plan. */
  finish(): ExtractPlan {
    const options = this.#options;
    const unsafe: UnsafeEntryError[] = [];
    for (const link of this.#links) {
      try {
        checkLinkTarget(link, (relpath) => this.#linkKeys.has(this.#key(relpath)));
      } catch (error) {
        if (!(error instanceof UnsafeEntryError)) throw error;
        this.plan.unsafeLinks++;
        if (options.onUnsafeLink) options.onUnsafeLink(link, error);
        else unsafe.push(error);
      }
    }
    if (unsafe.length === 1) throw unsafe[0];
    if (unsafe.length > 1) {
      const shown = unsafe.slice(0, 10).map((e) => `  ${e.message}`).join("\n");
      throw new UnsafeEntryError(
        `Cannot extract: ${unsafe.length} symlinks point outside the output folder ` +
          `(pass --allow-unsafe-links to keep them, or --keep-going to extract the rest without them):\n` +
          shown + (unsafe.length > 10 ? `\n  ... and ${unsafe.length - 10} more` : ""),
      );
    }
    return this.plan;
  }

  #key(relpath: string): string {
    return pathKey(relpath, this.#options.foldCase ?? false);
  }
}

/**
 * Refuse a symlink whose target is absolute, climbs out of the output
 * folder when resolved from the link's folder, or climbs (`..`) after
 * passing through another link: a link's real depth can differ from its
 * lexical one (`t -> .` then `s -> t/..` leaves the folder), so no `..` may
 * follow a component that is a link.
 *
 * @param entry a symlink entry
 * @param isLink tells whether a relpath (under the output folder) is a link
 * @throws {UnsafeEntryError} when the target leaves the output folder
 */
export function checkLinkTarget(entry: IndexEntry, isLink?: (relpath: string) => boolean): void {
  const target = entry.linkTarget ?? "";
  const refuse = (why: string) =>
    new UnsafeEntryError(
      `Cannot extract symlink "${entry.relpath}" -> "${target}": ${why} (pass --allow-unsafe-links to keep it)`,
    );
  if (target.startsWith("/") || /^[A-Za-z]:/.test(target) || target.includes("\\")) {
    throw refuse("absolute target");
  }
  const stack = entry.relpath.split("/").slice(0, -1);
  let throughLink: string | undefined;
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (throughLink !== undefined) throw refuse(`target climbs out of the link "${throughLink}"`);
      if (stack.length === 0) throw refuse("target leaves the output folder");
      stack.pop();
    } else {
      stack.push(part);
      if (throughLink === undefined && isLink?.(stack.join("/"))) throughLink = stack.join("/");
    }
  }
}
