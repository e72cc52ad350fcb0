/**
 * SHA-256, in one place: one-shot digests of small buffers, an incremental
 * hash for streamed bytes, the digest of a byte range, and the checks that
 * compare a payload with the `sha256` of its entry. Every check, on a whole
 * buffer or on a stream, raises the same {@link IntegrityError}.
 *
 * `node:crypto` rather than `crypto.subtle`: its one-shot `hash()` handles
 * 290,000+ small buffers a second here, 8 times `crypto.subtle` (README,
 * Performance), and the incremental `createHash()` needs no whole buffer.
 *
 * @module
 */

import { createHash, hash } from "node:crypto";
import { IntegrityError } from "../errors.ts";
import { sha256HexSmall, SMALL_MAX } from "./sha256_small.ts";
import { type RandomAccess, readRange } from "./random_access.ts";

/**
 * Lowercase hex SHA-256 of `bytes`. The one-shot `hash()`, unlike `createHash()`, leaves no
 * native object for the garbage collector, which kept about 110 MiB of RSS alive over a million
 * small files; still, each call leaves native memory that only a major collection gives back
 * (about 70 MiB over a million calls), so buffers of at most 128 bytes are hashed in JavaScript
 * (./sha256_small.ts), as fast at that size.
 *
 * @param bytes the bytes
 * @returns 64 lowercase hex digits
 */
export function sha256Hex(bytes: Uint8Array): string {
  if (bytes.length <= SMALL_MAX) return sha256HexSmall(bytes);
  return hash("sha256", bytes, "hex");
}

/** An incremental SHA-256 over bytes that arrive in pieces. */
export class Sha256 {
  #hash = createHash("sha256");

  /**
   * Add bytes.
   *
   * @param bytes the next piece
   * @returns this hash
   */
  update(bytes: Uint8Array): this {
    this.#hash.update(bytes);
    return this;
  }

  /**
   * The digest of every piece added; the hash cannot be used afterwards.
   *
   * @returns 64 lowercase hex digits
   */
  digest(): string {
    return this.#hash.digest("hex");
  }
}

/**
 * SHA-256 of `length` bytes of `source` from `offset`, read in blocks.
 *
 * @param source where the bytes are
 * @param offset offset in bytes
 * @param length bytes to hash
 * @returns 64 lowercase hex digits
 */
export async function sha256OfRange(
  source: RandomAccess,
  offset: number,
  length: number,
): Promise<string> {
  const hash = new Sha256();
  for await (const bytes of readRange(source, offset, length)) hash.update(bytes);
  return hash.digest();
}

/**
 * The error for a payload whose SHA-256 differs from its entry's.
 *
 * @param relpath the entry's relpath
 * @param expected the recorded SHA-256
 * @param actual the SHA-256 computed
 * @returns an {@link IntegrityError} naming the entry and both digests (12 hex digits each)
 */
export function sha256Mismatch(relpath: string, expected: string, actual: string): IntegrityError {
  return new IntegrityError(
    `Cannot verify "${relpath}": payload SHA-256 mismatch ` +
      `(expected ${expected.slice(0, 12)}..., got ${actual.slice(0, 12)}...)`,
  );
}

/**
 * Check stored bytes held whole against the entry's `sha256`.
 *
 * @param relpath the entry's relpath, for the message
 * @param expected the recorded SHA-256 (lowercase hex)
 * @param bytes the stored bytes
 * @throws {IntegrityError} on a mismatch
 */
export function checkSha256(relpath: string, expected: string, bytes: Uint8Array): void {
  const actual = sha256Hex(bytes);
  if (actual !== expected) throw sha256Mismatch(relpath, expected, actual);
}

/**
 * A pass-through that hashes the stored bytes of one entry as they pass,
 * fails as soon as more than `size` bytes arrive, and at the end compares
 * the digest with `sha256` (Go's `archive/zip` checksumReader, as a Web
 * stream): a consumer that reads to the end has verified the bytes.
 *
 * @example Verify bytes as they stream
 * ```ts
 * import { Sha256CheckStream, sha256Hex } from "./sha256.ts";
 * const bytes = new TextEncoder().encode("hello");
 * const check = new Sha256CheckStream("a.txt", sha256Hex(bytes), bytes.length);
 * const out = await new Response(new Blob([bytes]).stream().pipeThrough(check)).text();
 * if (out !== "hello") throw new Error("changed on the way");
 * ```
 */
export class Sha256CheckStream extends TransformStream<Uint8Array, Uint8Array> {
  /**
   * @param relpath the entry's relpath, for messages
   * @param sha256 the recorded SHA-256 of the stored bytes (lowercase hex)
   * @param size the stored size in bytes
   */
  constructor(relpath: string, sha256: string, size: number) {
    const hash = new Sha256();
    let seen = 0;
    super({
      transform(chunk, controller) {
        seen += chunk.length;
        if (seen > size) {
          controller.error(
            new IntegrityError(`Cannot verify "${relpath}": more than its ${size} stored bytes`),
          );
          return;
        }
        hash.update(chunk);
        controller.enqueue(chunk);
      },
      flush(controller) {
        const actual = hash.digest();
        if (seen !== size) {
          controller.error(
            new IntegrityError(`Cannot verify "${relpath}": ${seen} of its ${size} stored bytes`),
          );
        } else if (actual !== sha256) controller.error(sha256Mismatch(relpath, sha256, actual));
      },
    });
  }
}
