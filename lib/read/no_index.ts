/**
 * What to say about a file whose index cannot be found: it is no container,
 * it is a container cut short, or its index is missing. What can honestly be
 * told apart (README "What ctnr refuses to do"):
 *
 * - a trailer cut short is seen: the last `CTNRv1__` of the file runs past
 *   its end (lib/format/trailer.ts `searchTrailer`), so the file is a
 *   container cut short: `CONTAINER_CUT`, or `INDEX_MISSING` when the file
 *   stops inside the trailer's 16-byte header (no index line is left);
 * - with no trailer at all, a container that was never finalized (or was cut
 *   inside its payloads) is only its files' bytes back to back: nothing tells
 *   it from a tar, a text or any other file. That is `NOT_A_CONTAINER`, and
 *   the message says that a container never finalized needs its index; with
 *   `salvage`, which only asks for what an index names, it is
 *   `INDEX_MISSING`.
 *
 * @module
 */

import { ContainerFormatError } from "../errors.ts";
import type { CutTrailer, TrailerSearch } from "../format/trailer.ts";
import type { RandomAccess } from "../io/random_access.ts";

/**
 * The error for a container whose index was not found, from what {@link searchTrailer} saw.
 *
 * @param path the container's path
 * @param file the container
 * @param search what the trailer search found (no whole trailer)
 * @param salvage whether the caller reads with `salvage`
 * @returns a {@link ContainerFormatError}: `CONTAINER_CUT`, `INDEX_MISSING`, `NOT_A_CONTAINER`,
 *   or the footer fault
 */
export async function noIndexError(
  path: string,
  file: RandomAccess,
  search: TrailerSearch,
  salvage: boolean,
): Promise<ContainerFormatError> {
  const cut = search.cut;
  if (cut !== null && cut.kind === "header") {
    return new ContainerFormatError(
      `Cannot read "${path}": index missing: the file is cut short at byte ${file.size}, ` +
        `inside the header of its trailer (at byte ${cut.trailerOffset}); the index is lost: ` +
        `pass \`index\` if a copy of "${path}.idx" was kept`,
      { code: "INDEX_MISSING", options: ["index"] },
    );
  }
  if (cut !== null && !salvage) {
    return new ContainerFormatError(
      `Cannot read "${path}": ${cutShort(file.size, cut)}; \`salvage\` extracts the entries ` +
        `whose index lines and payloads survive`,
      { code: "CONTAINER_CUT", options: ["salvage"] },
    );
  }
  if (cut !== null) {
    return new ContainerFormatError(
      `Cannot read "${path}": index missing: ${cutShort(file.size, cut)}, before the end of ` +
        `the first line of its index; pass \`index\` if a copy of "${path}.idx" was kept`,
      { code: "INDEX_MISSING", options: ["index"] },
    );
  }
  if (search.footerFault !== null) {
    const fault = search.footerFault;
    return new ContainerFormatError(
      `Cannot read "${path}": ${fault.message.replace(/^Cannot read the trailer: /, "")}`,
      { code: fault.code === "CONTAINER_CUT" ? "CONTAINER_CUT" : "CONTAINER_FORMAT" },
    );
  }
  if (salvage) {
    return new ContainerFormatError(
      `Cannot read "${path}": index missing: it has no trailer and there is no "${path}.idx"; ` +
        `without an index no entry can be found: pass \`index\``,
      { code: "INDEX_MISSING", options: ["index"] },
    );
  }
  const looks = await looksLike(file);
  return new ContainerFormatError(
    `Cannot read "${path}": not a CTNRv1 container${looks}: no trailer and no index ` +
      `"${path}.idx" (a container never finalized needs its index: pass \`index\`)`,
    { code: "NOT_A_CONTAINER", options: ["index"] },
  );
}

/**
 * `cut short at byte N (... says M)` for a trailer the file stops inside.
 *
 * @param size the file's size in bytes
 * @param cut the trailer cut short
 * @returns the words, without a capital or a period
 */
export function cutShort(size: number, cut: CutTrailer): string {
  const says = cut.kind === "header"
    ? `its trailer header ends at byte ${cut.expectedEnd}`
    : cut.kind === "index"
    ? `its trailer's index runs to byte ${cut.expectedEnd}`
    : `its footer ends at byte ${cut.expectedEnd}`;
  return `cut short at byte ${size} (${says})`;
}

/** ` (it is empty)`, ` (it looks like a tar archive)`, ... or nothing. */
async function looksLike(file: RandomAccess): Promise<string> {
  if (file.size === 0) return " (it is empty)";
  const head = await file.readAt(0, Math.min(file.size, 512));
  const text = new TextDecoder().decode(head.subarray(0, 64));
  if (/^\s*(\[\s*)?\{\s*"(relpath|version|entries)"/.test(text)) {
    return " (it looks like an index: pass it as `index` with its container)";
  }
  if (head.length >= 262 && new TextDecoder().decode(head.subarray(257, 262)) === "ustar") {
    return " (it looks like a tar archive)";
  }
  return "";
}
