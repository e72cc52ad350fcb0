/**
 * The relpath rule: which stored paths may be joined under an output folder.
 * A relpath is refused, never "cleaned" (tar strips a leading `/` and goes
 * on; ctnr refuses the whole container before writing).
 *
 * @module
 */

const DRIVE = /^[A-Za-z]:/;
const DOT = 0x2e;

/**
 * Longest relpath, in UTF-16 code units: the longest path any platform opens (Windows, with
 * long paths: 32,767). Checked before any other work, so one entry costs a bounded time.
 */
export const MAX_RELPATH = 32_767;

/**
 * Check that a relpath is safe to join under an output folder.
 *
 * Refused: longer than {@link MAX_RELPATH}, empty, `.`, absolute (`/x`,
 * `//server/x`), Windows drive letters (`C:/x`, `C:x`), backslashes, NUL,
 * empty, `.` or `..` components, and strings that are not well-formed
 * Unicode. Linear in the relpath's length.
 *
 * @param relpath the candidate path
 * @returns a reason it is refused, or `undefined` when it is safe
 */
export function checkRelpath(relpath: string): string | undefined {
  if (relpath.length === 0) return "empty path";
  if (relpath.length > MAX_RELPATH) return `longer than ${MAX_RELPATH} characters`;
  if (!relpath.isWellFormed()) return "not well-formed Unicode";
  if (relpath.includes("\0")) return "contains NUL";
  if (relpath.includes("\\")) return "contains a backslash";
  if (relpath.startsWith("/")) return "absolute path";
  if (DRIVE.test(relpath)) return "Windows drive letter";
  // Components scanned in place (no split array: this runs twice per entry on extract).
  for (let start = 0;;) {
    const slash = relpath.indexOf("/", start);
    const end = slash < 0 ? relpath.length : slash;
    if (end === start) return "empty path component";
    if (relpath.charCodeAt(start) === DOT) {
      if (end === start + 1) return "'.' path component";
      if (end === start + 2 && relpath.charCodeAt(start + 1) === DOT) return "'..' path component";
    }
    if (slash < 0) return undefined;
    start = slash + 1;
  }
}
