/**
 * The platform's limits on path lengths, checked by the extraction plan
 * before anything is written: a path too long would otherwise fail midway,
 * at its rename, after other files were written.
 *
 * | platform | whole path (bytes, without NUL)  | one name          |
 * | -------- | -------------------------------- | ----------------- |
 * | Linux    | 4,095 (`PATH_MAX` 4,096)         | 255 bytes         |
 * | macOS    | 1,023 (`PATH_MAX` 1,024)         | 255 bytes         |
 * | Windows  | 32,767 UTF-16 units (long paths) | 255 UTF-16 units  |
 *
 * Each file is written through a temp file in its folder, so a name is
 * counted as at least as long as a temp name.
 *
 * @module
 */

/** Limits of path lengths, in the unit the platform counts. */
export interface PathLimits {
  /** Longest whole path. */
  path: number;
  /** Longest name (one component). */
  name: number;
  /** `utf8` bytes (POSIX) or `utf16` code units (Windows). */
  unit: "utf8" | "utf16";
}

/** Length of a temp name (`.ctnr-tmp-<6 chars>-<counter>`), counted with room for the counter. */
const TEMP_NAME_LENGTH = 32;

/**
 * The limits of an operating system.
 *
 * @param os `Deno.build.os`
 * @returns its limits
 */
export function pathLimits(os: typeof Deno.build.os): PathLimits {
  if (os === "windows") return { path: 32_767, name: 255, unit: "utf16" };
  if (os === "darwin") return { path: 1_023, name: 255, unit: "utf8" };
  return { path: 4_095, name: 255, unit: "utf8" };
}

/**
 * Why `relpath` cannot be written under a folder whose path is `rootLength` long, or
 * `undefined` when it can. Linear in the relpath's length.
 *
 * @param rootLength length of the output folder's path, in the limits' unit
 * @param relpath a relpath already checked by `checkRelpath`
 * @param limits the platform's limits
 * @returns the reason, naming the length and the limit
 */
export function pathTooLong(
  rootLength: number,
  relpath: string,
  limits: PathLimits,
): string | undefined {
  let total = rootLength;
  let name = 0;
  for (let i = 0; i <= relpath.length; i++) {
    const c = i < relpath.length ? relpath.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      if (name > limits.name) {
        return `a name in it is ${name} ${
          unitName(limits)
        } long, over the ${limits.name} this system allows`;
      }
      // The folder, a slash, and the longer of the name and a temp name in it.
      const room = total + 1 + Math.max(name, i === relpath.length ? TEMP_NAME_LENGTH : 0);
      if (room > limits.path) {
        return `its path would be over ${limits.path} ${
          unitName(limits)
        }, the most this system allows`;
      }
      total += 1 + name;
      name = 0;
      continue;
    }
    name += unitLength(c, limits);
  }
  return undefined;
}

/**
 * Length of a path in the limits' unit.
 *
 * @param path a path
 * @param limits the platform's limits
 * @returns its length
 */
export function pathLength(path: string, limits: PathLimits): number {
  let length = 0;
  for (let i = 0; i < path.length; i++) length += unitLength(path.charCodeAt(i), limits);
  return length;
}

/** UTF-8 bytes of a UTF-16 code unit (a surrogate counts 2: a pair makes the 4 of its code point). */
function unitLength(c: number, limits: PathLimits): number {
  if (limits.unit === "utf16") return 1;
  return c < 0x80 ? 1 : c < 0x800 ? 2 : c >= 0xd800 && c <= 0xdfff ? 2 : 3;
}

function unitName(limits: PathLimits): string {
  return limits.unit === "utf8" ? "bytes" : "UTF-16 units";
}
