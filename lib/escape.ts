/**
 * One character written as an escape, for text shown on one line (terminal lines, `kv` status
 * values): `\\`, `\n`, `\t`, `\xNN` below U+0100, else `\uNNNN`.
 *
 * @module
 */

/**
 * The escape of one character (a control, a separator, a bidi mark or the backslash).
 *
 * @param c one UTF-16 code unit
 * @returns its escape (`\n`, `\x1b`, `\u202e`, `\\`)
 */
export function escapeChar(c: string): string {
  if (c === "\\") return "\\\\";
  if (c === "\n") return "\\n";
  if (c === "\t") return "\\t";
  const code = c.charCodeAt(0);
  return code < 0x100
    ? `\\x${code.toString(16).padStart(2, "0")}`
    : `\\u${code.toString(16).padStart(4, "0")}`;
}
