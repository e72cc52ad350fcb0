/**
 * Names of temp files, in one place: every file ctnr writes is complete in
 * a temp file before a rename gives it its name. Two forms:
 *
 * - beside a fixed path (`<path>.ctnr-tmp`): an index copied out of a
 *   trailer, a status file;
 * - per run in an output folder (`.ctnr-tmp-<tag>-<n>`, the tag random per
 *   run): the files `extract` writes, so two files of one folder never share
 *   a temp name and a later run can tell a killed run's leftovers.
 *
 * @module
 */

/** Suffix of a temp file beside a fixed path. */
export const SIBLING_SUFFIX = ".ctnr-tmp";

/** Prefix of an extraction temp file. */
export const TEMP_PREFIX = ".ctnr-tmp-";

/** Exactly the names {@link TempNames} gives: `.ctnr-tmp-<tag>-<n>`. */
export const TEMP_NAME = /^\.ctnr-tmp-[0-9a-z]+-[0-9]+$/;

/**
 * The temp file written before a rename to `path`.
 *
 * @param path the final path
 * @returns `path` + `.ctnr-tmp`
 */
export function siblingTemp(path: string): string {
  return path + SIBLING_SUFFIX;
}

/** Temp names of one run: a random tag and a counter. */
export class TempNames {
  #tag = Math.random().toString(36).slice(2, 8);
  #counter = 0;

  /**
   * A new temp name in `folder`.
   *
   * @param folder the folder the file is renamed within
   * @returns `<folder>/.ctnr-tmp-<tag>-<n>`
   */
  next(folder: string): string {
    return `${folder}/${TEMP_PREFIX}${this.#tag}-${++this.#counter}`;
  }
}
