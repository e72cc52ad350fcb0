/**
 * Names ctnr keeps for its own files in an output folder: the run marker
 * (`.ctnr-extract.lock`, lib/safety/run_marker.ts) and the temp files of
 * `extract` (`.ctnr-tmp-<tag>-<n>`, lib/io/temp_file.ts). An entry of a
 * container with such a name would be taken, by a later run into the same
 * folder, for a killed run's marker and temp files, and removed: a container
 * holding a marker and two "temp files" had a second extraction delete both
 * user files. `extract` refuses such entries; `create` leaves such files out.
 *
 * Compared ignoring ASCII case: on a case-insensitive target
 * `.CTNR-EXTRACT.LOCK` is the marker.
 *
 * @module
 */

import { TEMP_NAME } from "../io/temp_file.ts";
import { RUN_MARKER } from "./run_marker.ts";

/**
 * Why a relpath may not be used, when one of its names is reserved.
 *
 * @param relpath a relpath (`/`-separated)
 * @returns the reason, or `undefined` when no name of it is reserved
 */
export function reservedName(relpath: string): string | undefined {
  // Fast path: every reserved name starts with ".ctnr-" (any case).
  if (!/\.ctnr-/i.test(relpath)) return undefined;
  const lower = relpath.toLowerCase();
  if (lower === RUN_MARKER) {
    return `"${RUN_MARKER}" is the name of ctnr's run marker in an output folder`;
  }
  for (const name of lower.split("/")) {
    if (TEMP_NAME.test(name)) {
      return `"${name}" has the form of ctnr's temp files (.ctnr-tmp-<tag>-<n>), which a later ` +
        `run removes`;
    }
  }
  return undefined;
}
