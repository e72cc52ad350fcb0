/**
 * Lines to standard output in large blocks: `list` of a million entries made
 * a million write calls, one a line (20,000 entries: 0.73 s, against 0.30 s
 * for `tar -tvf`). The lines are joined and handed to {@link CliIo.stdout}
 * about 64 KiB at a time; `flush()` writes what is left, so nothing is lost
 * at the end or before an error is reported.
 *
 * @module
 */

import type { CliIo } from "./output.ts";

/** Characters held before a write: about 64 KiB of ASCII text. */
const BLOCK_CHARS = 64 << 10;

/** Lines held and written to a {@link CliIo}'s stdout in blocks. */
export class LineBuffer {
  #io: CliIo;
  #lines: string[] = [];
  #chars = 0;
  #limit: number;

  /**
   * @param io where the lines go (its `stdout`, which ends each block with a newline)
   * @param limit characters held before a write
   */
  constructor(io: CliIo, limit = BLOCK_CHARS) {
    this.#io = io;
    this.#limit = limit;
  }

  /**
   * Add a line (without its newline); writes the block once it holds `limit` characters.
   *
   * @throws what `io.stdout` throws (`StdoutClosed` when the reader went away)
   */
  push(line: string): void {
    this.#lines.push(line);
    this.#chars += line.length + 1;
    if (this.#chars >= this.#limit) this.flush();
  }

  /**
   * Write the lines held, if any.
   *
   * @throws what `io.stdout` throws
   */
  flush(): void {
    if (this.#lines.length === 0) return;
    const text = this.#lines.join("\n");
    this.#lines = [];
    this.#chars = 0;
    this.#io.stdout(text);
  }
}
