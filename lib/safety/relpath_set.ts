/**
 * A set of relpaths kept as 96-bit hashes in typed arrays: 16 bytes a slot
 * (hash and a 32-bit value), no strings kept, so a million entries cost
 * 32 to 64 MiB. Two
 * different relpaths collide with a probability near 2^-96 per pair, far
 * below the chance of a disk error.
 *
 * @module
 */

const EMPTY_LOAD = 0.75;

/** Hashed set of strings with bounded memory, each with an optional 32-bit value. */
export class RelpathSet {
  #slots!: Uint32Array<ArrayBuffer>;
  #values!: Uint32Array<ArrayBuffer>;
  #mask!: number;
  #size = 0;
  /** A byte a slot, set by `mark`; allocated on the first mark. */
  #marks: Uint8Array<ArrayBuffer> | undefined;
  #marked = 0;

  /** @param expected number of strings expected (sizes the table; it grows as needed) */
  constructor(expected = 1024) {
    let capacity = 16;
    while (capacity * EMPTY_LOAD < expected) capacity *= 2;
    this.#empty(capacity);
  }

  /** Make the set empty, with a table of `capacity` slots (a power of two). */
  #empty(capacity: number): void {
    this.#slots = new Uint32Array(capacity * 3);
    this.#values = new Uint32Array(capacity);
    this.#mask = capacity - 1;
    this.#size = 0;
    this.#marks = undefined;
    this.#marked = 0;
  }

  /** Number of strings in the set. */
  get size(): number {
    return this.#size;
  }

  /**
   * Add a string.
   * @returns true when it was not in the set before
   */
  add(text: string, value = 0): boolean {
    return this.addHash(hash96(text), 0, value);
  }

  /** Whether the set holds `text`. */
  has(text: string): boolean {
    return this.getHash(hash96(text), 0) !== undefined;
  }

  /**
   * The value stored with `text`.
   * @returns the value, or `undefined` when `text` is not in the set
   */
  get(text: string): number | undefined {
    return this.getHash(hash96(text), 0);
  }

  /**
   * Add the string whose hash is at `hashes[3 * at]` (see {@link prefixHashes}).
   *
   * @param hashes hashes of strings, three numbers each
   * @param at which of them
   * @param value the value kept with it
   * @returns true when it was not in the set before
   */
  addHash(hashes: Uint32Array, at: number, value = 0): boolean {
    if ((this.#size + 1) > (this.#mask + 1) * EMPTY_LOAD) this.#grow();
    return this.#insert(hashes[at * 3]!, hashes[at * 3 + 1]!, hashes[at * 3 + 2]!, value);
  }

  /**
   * The value kept with the string whose hash is at `hashes[3 * at]`.
   *
   * @param hashes hashes of strings, three numbers each
   * @param at which of them
   * @returns the value, or `undefined` when it is not in the set
   */
  getHash(hashes: Uint32Array, at: number): number | undefined {
    const slot = this.#find(hashes[at * 3]!, hashes[at * 3 + 1]!, hashes[at * 3 + 2]!);
    return slot < 0 ? undefined : this.#values[slot];
  }

  /**
   * The value kept with `text`, and mark it (see {@link RelpathSet.isMarked}). Marks cost a
   * byte a slot, allocated on the first one.
   *
   * @param text a string
   * @returns the value, or `undefined` (nothing marked) when `text` is not in the set
   */
  getAndMark(text: string): number | undefined {
    const h = hash96(text);
    const slot = this.#find(h[0]!, h[1]!, h[2]!);
    if (slot < 0) return undefined;
    this.#marks ??= new Uint8Array(this.#mask + 1);
    if (this.#marks[slot] === 0) {
      this.#marks[slot] = 1;
      this.#marked++;
    }
    return this.#values[slot];
  }

  /** Whether `text` is in the set and was marked by {@link RelpathSet.getAndMark}. */
  isMarked(text: string): boolean {
    const h = hash96(text);
    const slot = this.#find(h[0]!, h[1]!, h[2]!);
    return slot >= 0 && this.#marks !== undefined && this.#marks[slot] === 1;
  }

  /** Number of strings marked. */
  get marked(): number {
    return this.#marked;
  }

  /**
   * Give the table's memory back now, not at the engine's next full garbage collection (the
   * ArrayBuffers are detached: `ArrayBuffer.prototype.transfer`, ES2024). The set is empty
   * after it and grows again if used.
   */
  dispose(): void {
    this.#slots.buffer.transfer(0);
    this.#values.buffer.transfer(0);
    this.#marks?.buffer.transfer(0);
    this.#empty(16);
  }

  #find(a: number, b: number, c: number): number {
    const slots = this.#slots;
    let i = a & this.#mask;
    for (;;) {
      const k = i * 3;
      if (slots[k + 2] === 0) return -1;
      if (slots[k] === a && slots[k + 1] === b && slots[k + 2] === c) return i;
      i = (i + 1) & this.#mask;
    }
  }

  #insert(a: number, b: number, c: number, value: number): boolean {
    const size = this.#size;
    this.#place(a, b, c, value);
    return this.#size > size;
  }

  /** The slot of a hash: where it is, or where it was put (with `value`). */
  #place(a: number, b: number, c: number, value: number): number {
    const slots = this.#slots;
    let i = a & this.#mask;
    for (;;) {
      const k = i * 3;
      if (slots[k + 2] === 0) {
        slots[k] = a;
        slots[k + 1] = b;
        slots[k + 2] = c;
        this.#values[i] = value;
        this.#size++;
        return i;
      }
      if (slots[k] === a && slots[k + 1] === b && slots[k + 2] === c) return i;
      i = (i + 1) & this.#mask;
    }
  }

  #grow(): void {
    const old = this.#slots;
    const oldValues = this.#values;
    const oldMarks = this.#marks;
    this.#slots = new Uint32Array(old.length * 2);
    this.#values = new Uint32Array(oldValues.length * 2);
    this.#mask = this.#mask * 2 + 1;
    this.#size = 0;
    if (oldMarks !== undefined) this.#marks = new Uint8Array(this.#mask + 1);
    for (let k = 0, i = 0; k < old.length; k += 3, i++) {
      if (old[k + 2] === 0) continue;
      const slot = this.#place(old[k]!, old[k + 1]!, old[k + 2]!, oldValues[i]!);
      if (oldMarks !== undefined) this.#marks![slot] = oldMarks[i]!;
    }
  }
}

/** Three independent 32-bit hashes of the UTF-16 code units; the third is never 0. */
function hash96(text: string): Uint32Array {
  const out = new Uint32Array(3);
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  let c = 0x2545f491;
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    a = Math.imul(a ^ u, 0x01000193);
    b = Math.imul(b ^ u, 0x5bd1e995);
    b ^= b >>> 15;
    c = Math.imul(c + u, 0x9e3779b1) ^ (c >>> 13);
  }
  finish(out, 0, a, b, c, text.length);
  return out;
}

/**
 * The hashes of every folder prefix of a relpath (each part before a `/`), then of the whole
 * relpath: three numbers each, in one pass over its code units (linear in its length, where
 * hashing each prefix on its own is quadratic in its depth). The hash of a prefix equals the
 * hash of the same string on its own.
 *
 * @param text a relpath
 * @returns `3 * (slashes + 1)` numbers: prefixes from the shortest, then the whole
 */
export function prefixHashes(text: string): Uint32Array {
  let slashes = 0;
  for (let i = text.indexOf("/"); i >= 0; i = text.indexOf("/", i + 1)) slashes++;
  const out = new Uint32Array(3 * (slashes + 1));
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  let c = 0x2545f491;
  let at = 0;
  for (let i = 0; i < text.length; i++) {
    const u = text.charCodeAt(i);
    if (u === 0x2f) finish(out, at++, a, b, c, i);
    a = Math.imul(a ^ u, 0x01000193);
    b = Math.imul(b ^ u, 0x5bd1e995);
    b ^= b >>> 15;
    c = Math.imul(c + u, 0x9e3779b1) ^ (c >>> 13);
  }
  finish(out, at, a, b, c, text.length);
  return out;
}

/** Mix the length in and spread the bits of a hash state; write it at `out[3 * at]`. */
function finish(
  out: Uint32Array,
  at: number,
  a: number,
  b: number,
  c: number,
  length: number,
): void {
  b ^= Math.imul(length, 0x27d4eb2f);
  a ^= a >>> 16;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 13;
  b = Math.imul(b ^ (b >>> 16), 0xc2b2ae35);
  b ^= b >>> 16;
  c = Math.imul(c ^ (c >>> 15), 0x27d4eb2f);
  c ^= c >>> 16;
  out[at * 3] = a >>> 0;
  out[at * 3 + 1] = b >>> 0;
  out[at * 3 + 2] = (c >>> 0) || 1;
}
