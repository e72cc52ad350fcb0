/**
 * The rule that an entry's payload bytes belong to that entry alone: no
 * two file entries' payloads overlap (the zip "overlapping files" bomb: 200
 * entries pointing at one 37 KB gzip payload become 200 MB of files).
 * Empty payloads overlap nothing.
 *
 * Entries in offset order, as every writer lays them out, are checked as
 * they pass with O(1) memory ({@link PayloadOrder}); an index out of offset
 * order is checked by sorting all its ranges ({@link findOverlap}: 20 bytes
 * an entry, only then).
 *
 * @module
 */

import { UnsafeEntryError } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";

/** Follows the payloads of an index in offset order, as long as they are in it. */
export class PayloadOrder {
  #lastStart = 0;
  #end = 0;
  #last: string | undefined;
  #ordered = true;
  #verb: string;

  /** @param verb what an overlap fails (`Cannot verify ...`) */
  constructor(verb = "extract") {
    this.#verb = verb;
  }

  /** Whether every payload so far came after the one before it. */
  get ordered(): boolean {
    return this.#ordered;
  }

  /**
   * Take the next entry of the index.
   *
   * @param entry an entry
   * @throws {UnsafeEntryError} when its payload overlaps the payload just before it
   */
  add(entry: IndexEntry): void {
    if (!this.#ordered || entry.entryType !== "file" || entry.payloadSize === 0) return;
    if (entry.offset >= this.#end) {
      this.#lastStart = entry.offset;
      this.#end = entry.offset + entry.payloadSize;
      this.#last = entry.relpath;
    } else if (entry.offset >= this.#lastStart) {
      throw overlap(entry.relpath, this.#last!, this.#verb);
    } else this.#ordered = false; // out of offset order: only a sort can tell
  }
}

/** The payload ranges of an index out of offset order, gathered to be sorted. */
export class PayloadRanges {
  #starts = new Float64Array(1024);
  #ends = new Float64Array(1024);
  #count = 0;

  /**
   * Gather one entry (positions count the file entries with a payload, in index order).
   *
   * @param entry an entry
   */
  add(entry: IndexEntry): void {
    if (entry.entryType !== "file" || entry.payloadSize === 0) return;
    if (this.#count === this.#starts.length) {
      this.#starts = grow(this.#starts);
      this.#ends = grow(this.#ends);
    }
    this.#starts[this.#count] = entry.offset;
    this.#ends[this.#count] = entry.offset + entry.payloadSize;
    this.#count++;
  }

  /**
   * Two payloads that overlap, by their positions among the entries gathered.
   *
   * @returns the positions `[earlier, later]`, or `undefined` when none overlap
   */
  findOverlap(): [number, number] | undefined {
    const starts = this.#starts;
    const ends = this.#ends;
    const order = new Uint32Array(this.#count);
    for (let i = 0; i < this.#count; i++) order[i] = i;
    order.sort((a, b) => starts[a]! - starts[b]! || a - b);
    let reach = -1; // the range that ends furthest among those before
    for (const i of order) {
      if (reach >= 0 && starts[i]! < ends[reach]!) return [Math.min(reach, i), Math.max(reach, i)];
      if (reach < 0 || ends[i]! > ends[reach]!) reach = i;
    }
    return undefined;
  }
}

function grow(array: Float64Array): Float64Array<ArrayBuffer> {
  const bigger = new Float64Array(array.length * 2);
  bigger.set(array);
  return bigger;
}

/**
 * The error for two entries whose payloads overlap.
 *
 * @param relpath the later entry
 * @param other the entry whose payload it overlaps
 * @param verb what failed (`Cannot verify ...`)
 * @returns an {@link UnsafeEntryError} naming both
 */
export function overlap(relpath: string, other: string, verb = "extract"): UnsafeEntryError {
  return new UnsafeEntryError(
    `Cannot ${verb} "${relpath}": its payload overlaps the payload of "${other}" ` +
      `(an entry's bytes belong to one entry)`,
  );
}
