/**
 * The Windows name rule: which relpaths cannot be written as they are on Windows. Win32 opens
 * `CON`, `NUL`, `COM1`, ... (with any extension, in any case) as devices, strips a trailing dot
 * or space from a name (so `a.` writes `a`, another entry's file), and refuses `<>:"|?*` and the
 * control characters U+0001 to U+001F (`:` also names an NTFS alternate data stream: `a:b`
 * would write into a stream of `a`). `extract` refuses such entries on Windows; the rule is pure
 * so it is tested on every platform. Backslashes, NUL and drive letters are refused on every
 * platform already (lib/safety/relpath.ts).
 *
 * @module
 */

/**
 * Device names, matched on a name's part before its first dot, ignoring ASCII case and trailing
 * spaces (`nul.txt`, `Com1.tar.gz` and `CON .x` are all devices). `COM¹`-style superscript
 * digits, which Windows also counts, are included.
 */
const DEVICE = /^(?:CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9¹²³]|LPT[0-9¹²³]) *$/i;

/** Characters Win32 refuses in a name: `<>:"|?*` and U+0001 to U+001F (NUL: relpath rule). */
// deno-lint-ignore no-control-regex -- control characters are what it matches
const FORBIDDEN = /[<>:"|?*\u0001-\u001f]/;

/**
 * Why a relpath cannot be written on Windows: the first of its names that is a device name,
 * ends in a dot or a space, or holds a character Windows forbids.
 *
 * @param relpath a relpath that passed the relpath rule (`/`-separated, no empty, `.` or `..`
 *   component)
 * @returns the reason, naming the offending name, or `undefined` when Windows can write it
 */
export function windowsNameFault(relpath: string): string | undefined {
  for (const name of relpath.split("/")) {
    const forbidden = FORBIDDEN.exec(name);
    if (forbidden) {
      const char = forbidden[0];
      const shown = char < " "
        ? `U+${char.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`
        : `'${char}'`;
      return `the name "${name}" holds ${shown}, which Windows forbids in a file name`;
    }
    if (name.endsWith(".") || name.endsWith(" ")) {
      return `the name "${name}" ends in a ${
        name.endsWith(".") ? "dot" : "space"
      }, which Windows strips`;
    }
    const dot = name.indexOf(".");
    if (DEVICE.test(dot < 0 ? name : name.slice(0, dot))) {
      return `"${name}" is a reserved device name on Windows`;
    }
  }
  return undefined;
}
