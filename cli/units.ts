/**
 * Sizes and counts in the lines the CLI prints for people: one style
 * everywhere (`0 B`, `512 B`, `1.5 KiB`, `15.3 MiB`; `1 entry`, `2 entries`).
 * JSON output never uses these: it gives plain numbers of bytes.
 *
 * @module
 */

const UNITS = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/**
 * A size in bytes for people: whole bytes below 1 KiB (`0 B`, `1023 B`), else one decimal of
 * the largest binary unit that keeps it at least 1 (`1.5 KiB`, `1.0 MiB`).
 *
 * @param bytes size in bytes (a non-negative integer)
 * @returns the text
 */
export function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes / 1024;
  let unit = 0;
  // Step up when one decimal would round to 1024.0 (1048575 bytes is "1.0 MiB").
  while (unit < UNITS.length - 1 && Number(value.toFixed(1)) >= 1024) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

/**
 * A count with its noun, singular for 1 (`1 entry`, `0 entries`, `2 folders`).
 *
 * @param n the count
 * @param singular the noun for one (`entry`)
 * @param plural the noun for others (default: `singular` + `s`)
 * @returns the text
 */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
