/**
 * Streaming reader of a CTNRv1 index: NDJSON (what both tools write), or a
 * whole JSON array or `{"version": 1, "entries": [...]}` object (what the
 * original tools also read). Memory stays bounded for NDJSON: one block and
 * one line at a time.
 *
 * @module
 */

import { IndexFormatError } from "../errors.ts";
import { warning, type WarningHandler } from "../warnings.ts";
import { type IndexEntry, parseEntry } from "./entry.ts";
import type { RandomAccess } from "../io/random_access.ts";
import { readInto } from "../io/random_access.ts";

/** One entry with where it stands in the index. */
export interface IndexRecord {
  /** The validated entry. */
  entry: IndexEntry;
  /** 1-based line number (NDJSON) or 1-based element number (JSON array/object). */
  line: number;
  /** Byte offset just past this entry's line in the index (NDJSON only, else 0). */
  endOffset: number;
}

/** Options of {@link IndexReader}. */
export interface IndexReaderOptions {
  /** Offset in bytes of the index in `source`. @default 0 */
  start?: number;
  /** Size in bytes of the index. @default source.size - start */
  length?: number;
  /** Skip malformed lines with a warning instead of failing. @default false */
  lenient?: boolean;
  /** Stop quietly at a torn last line (no `\n`, not valid JSON), as a crash leaves it. @default false */
  allowTornTail?: boolean;
  /** Longest line accepted, in bytes. @default 1048576 */
  maxLineBytes?: number;
  /** Largest JSON array/object index loaded whole, in bytes (memory is about 3 times this). @default 33554432 */
  maxDocumentBytes?: number;
  /** Receives warnings (`INDEX_LINE_SKIPPED` in lenient mode). */
  onWarning?: WarningHandler;
  /** Do not send warnings (a second pass over an index already warned about). @default false */
  quiet?: boolean;
  /** Name of the index in messages. @default "index" */
  name?: string;
}

// 64 KiB blocks: a decoded block stays below V8's large-object size (128 KiB), so it dies young
// instead of piling up until a major GC (1M-entry resume: about 70 MiB less peak RSS).
const BLOCK = 64 << 10;
/** Bytes of the index read at a time; see `#blocks`. */
const READ_SIZE = 1 << 20;

/**
 * Reads the entries of an index in order.
 *
 * @example Count the entries of an NDJSON index
 * ```ts
 *
 * const text = new TextEncoder().encode(
 *   '{"relpath": "a", "offset": 0, "payload_size": 0, "orig_size": 0, ' +
 *     '"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "compressed": false}\n',
 * );
 * const source = { size: text.length, readAt: (p: number, n: number) => Promise.resolve(text.slice(p, p + n)) };
 * let count = 0;
 * for await (const _ of new IndexReader(source).records()) count++;
 * if (count !== 1) throw new Error("expected one entry");
 * ```
 */
export class IndexReader {
  #source: RandomAccess;
  #start: number;
  #length: number;
  #options: IndexReaderOptions;
  #name: string;
  #validLength = 0;
  #tornTail = false;
  #missingNewline = false;

  /**
   * Prepare a reader; nothing is read until `records()` is iterated.
   *
   * @param source where the index bytes are
   * @param options range, strictness and limits
   * @throws {RangeError} when the range lies outside `source`
   */
  constructor(source: RandomAccess, options: IndexReaderOptions = {}) {
    this.#source = source;
    this.#start = options.start ?? 0;
    this.#length = options.length ?? source.size - this.#start;
    if (this.#start < 0 || this.#length < 0 || this.#start + this.#length > source.size) {
      throw new RangeError(`Index range ${this.#start}+${this.#length} lies outside its file`);
    }
    this.#options = options;
    this.#name = options.name ?? "index";
  }

  /** Bytes of the index up to the end of its last complete line, known once `records()` ends. */
  get validLength(): number {
    return this.#validLength;
  }

  /** Whether `records()` stopped at a torn last line (only with `allowTornTail`). */
  get tornTail(): boolean {
    return this.#tornTail;
  }

  /** Whether the last line was a whole entry without its `\n` (known once `records()` ends). */
  get missingFinalNewline(): boolean {
    return this.#missingNewline;
  }

  /**
   * Iterate the entries in index order.
   *
   * @returns the entries with their line numbers
   * @throws {IndexFormatError} on invalid UTF-8, invalid JSON (unless lenient),
   *   an invalid entry, a line over `maxLineBytes`, or a torn last line
   *   (code `INDEX_TORN`, unless `allowTornTail`)
   */
  async *records(): AsyncGenerator<IndexRecord> {
    for await (const batch of this.batches()) yield* batch;
  }

  /**
   * {@link IndexReader.records} in batches: the same records in the same
   * order, an array per 64 KiB block of the index. One generator step per
   * batch rather than per entry: over 100,000 entries this saves about
   * 0.3 s of a 2 s extraction (bench/compare.ts). On an error, the records
   * before the bad line come first, as a batch of their own.
   *
   * @returns the entries with their line numbers, in batches
   * @throws {IndexFormatError} as {@link IndexReader.records}
   */
  async *batches(): AsyncGenerator<IndexRecord[]> {
    const head = new TextDecoder().decode(await this.#read(0, Math.min(this.#length, 256)));
    if (/^\s*(\[|\{\s*"(version|entries)")/.test(head)) {
      yield* this.#document();
      return;
    }
    for await (const lines of this.#lines()) {
      const out: IndexRecord[] = [];
      try {
        for (const record of lines) {
          if (record.value === undefined) continue; // skipped by lenient mode
          out.push({
            entry: parseEntry(record.value, `${this.#name} line ${record.line}`),
            line: record.line,
            endOffset: record.endOffset,
          });
        }
      } catch (error) {
        if (out.length > 0) yield out;
        throw error;
      }
      if (out.length > 0) yield out;
    }
  }

  /**
   * The index's bytes in pieces of {@link BLOCK} bytes (the last one shorter), read 1 MiB at a time:
   * each read call costs about 0.3 ms here whatever its size (a thread hand-off), and a
   * 100,000-entry index took 0.1 s in 64 KiB reads. The pieces are views into the read buffer,
   * valid until the next piece is asked for.
   */
  async *#blocks(): AsyncGenerator<Uint8Array> {
    // One read buffer, reused (a fresh megabyte per read raised a 1M-entry resume's peak RSS
    // from 151 to 175 MiB): the pieces are consumed, or copied, before the next read.
    const buffer = new Uint8Array(Math.min(READ_SIZE, this.#length));
    for (let position = 0; position < this.#length;) {
      const chunk = buffer.subarray(0, Math.min(buffer.length, this.#length - position));
      await readInto(this.#source, this.#start + position, chunk);
      position += chunk.length;
      for (let at = 0; at < chunk.length; at += BLOCK) yield chunk.subarray(at, at + BLOCK);
    }
  }

  /** The lines of the index, parsed as JSON, an array per block read. */
  async *#lines(): AsyncGenerator<{ value: unknown; line: number; endOffset: number }[]> {
    const maxLine = this.#options.maxLineBytes ?? 1 << 20;
    // ignoreBOM: a byte order mark stays in the text (and fails JSON.parse) wherever it is; by
    // default each decode call drops one at its start, so a BOM was accepted on a line that
    // began a 64 KiB piece and refused elsewhere, and it put endOffset 3 bytes short.
    const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    let carry: Uint8Array = new Uint8Array(0);
    let lineNumber = 0;
    let consumed = 0; // bytes of complete lines
    for await (const block of this.#blocks()) {
      const lastNewline = block.lastIndexOf(0x0a);
      if (lastNewline < 0) {
        carry = carry.length === 0 ? block.slice() : concat(carry, block); // not a view: reused
        if (carry.length > maxLine) throw this.#longLine(lineNumber + 1, maxLine);
        continue;
      }
      const text = concat(carry, block.subarray(0, lastNewline + 1));
      carry = block.slice(lastNewline + 1);
      let decoded: string;
      try {
        decoded = decoder.decode(text);
      } catch {
        throw new IndexFormatError(
          `Cannot read ${this.#name}: line ${lineNumber + firstBadLine(text)} is not valid UTF-8`,
        );
      }
      const ascii = decoded.length === text.length;
      const out: { value: unknown; line: number; endOffset: number }[] = [];
      try {
        let from = 0;
        let byteEnd = consumed;
        while (from < decoded.length) {
          const to = decoded.indexOf("\n", from);
          const line = decoded.slice(from, to);
          lineNumber++;
          byteEnd = ascii ? consumed + to + 1 : byteEnd + utf8Length(line) + 1;
          from = to + 1;
          if (
            line.length > maxLine ||
            (!ascii && line.length * 3 > maxLine && utf8Length(line) > maxLine)
          ) {
            throw this.#longLine(lineNumber, maxLine);
          }
          if (line.trim() === "") continue;
          out.push({
            value: this.#parseLine(line, lineNumber),
            line: lineNumber,
            endOffset: byteEnd,
          });
        }
      } catch (error) {
        if (out.length > 0) yield out;
        throw error;
      }
      yield out;
      consumed += text.length;
      this.#validLength = consumed;
      if (carry.length > maxLine) throw this.#longLine(lineNumber + 1, maxLine);
    }
    if (carry.length > 0) {
      lineNumber++;
      let value: unknown;
      try {
        const line = decoder.decode(carry);
        if (line.trim() === "") return;
        value = JSON.parse(line);
      } catch {
        // No newline and not a whole JSON value (or cut inside a UTF-8 character): torn.
        if (this.#options.allowTornTail) {
          this.#tornTail = true;
          return;
        }
        if (this.#options.lenient) {
          this.#warn(`Skipped torn last line ${lineNumber} of ${this.#name}`);
          return;
        }
        throw new IndexFormatError(
          `Cannot read ${this.#name}: line ${lineNumber} is torn (no newline, not valid JSON); ` +
            `a crash during create leaves this: run create again to resume, or extract with ` +
            `\`lenient\``,
          "INDEX_TORN",
          { options: ["lenient"] },
        );
      }
      this.#validLength = this.#length;
      this.#missingNewline = true;
      yield [{ value, line: lineNumber, endOffset: this.#length }];
    }
  }

  #warn(message: string): void {
    if (!this.#options.quiet) this.#options.onWarning?.(warning("INDEX_LINE_SKIPPED", message));
  }

  #parseLine(line: string, lineNumber: number): unknown {
    try {
      return JSON.parse(line);
    } catch (error) {
      if (this.#options.lenient) {
        this.#warn(`Skipped malformed line ${lineNumber} of ${this.#name}`);
        return undefined;
      }
      throw new IndexFormatError(
        `Cannot read ${this.#name}: line ${lineNumber} is not valid JSON: ${
          (error as Error).message
        }`,
      );
    }
  }

  async *#document(): AsyncGenerator<IndexRecord[]> {
    const limit = this.#options.maxDocumentBytes ?? 32 << 20;
    if (this.#length > limit) {
      throw new IndexFormatError(
        `Cannot read ${this.#name}: a JSON array/object index of ${this.#length} bytes is over ` +
          `the ${limit}-byte limit; convert it to NDJSON`,
      );
    }
    let value: unknown;
    try {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(
        await this.#read(0, this.#length),
      );
      value = JSON.parse(text);
    } catch (error) {
      throw new IndexFormatError(
        `Cannot read ${this.#name}: not a valid JSON document: ${(error as Error).message}`,
      );
    }
    const entries = Array.isArray(value) ? value : isDocumentObject(value) ? value.entries : null;
    if (entries === null) {
      throw new IndexFormatError(
        `Cannot read ${this.#name}: a JSON document index must be an array or have an "entries" array`,
      );
    }
    let out: IndexRecord[] = [];
    for (let n = 1; n <= entries.length; n++) {
      try {
        out.push({
          entry: parseEntry(entries[n - 1], `${this.#name} element ${n}`),
          line: n,
          endOffset: 0,
        });
      } catch (error) {
        if (out.length > 0) yield out;
        throw error;
      }
      if (out.length === 1024) {
        yield out;
        out = [];
      }
    }
    if (out.length > 0) yield out;
    this.#validLength = this.#length;
  }

  #longLine(line: number, max: number): IndexFormatError {
    return new IndexFormatError(
      `Cannot read ${this.#name}: line ${line} is longer than ${max} bytes`,
    );
  }

  #read(position: number, length: number): Promise<Uint8Array> {
    return this.#source.readAt(this.#start + position, length);
  }
}

/** 1-based number of the first line of `text` that is not valid UTF-8. */
function firstBadLine(text: Uint8Array): number {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  let line = 1;
  for (let from = 0; from < text.length; line++) {
    let to = text.indexOf(0x0a, from);
    if (to < 0) to = text.length;
    try {
      decoder.decode(text.subarray(from, to));
    } catch {
      return line;
    }
    from = to + 1;
  }
  return line;
}

function isDocumentObject(value: unknown): value is { entries: unknown[] } {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    Array.isArray((value as { entries?: unknown }).entries);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Number of bytes of the UTF-8 encoding of a well-formed string. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 2;
      i++;
    } else bytes += 2;
  }
  return bytes;
}
