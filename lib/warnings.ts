/**
 * Warnings: recoverable problems that a run reports and goes on after, each
 * with a stable code (node-tar's `warn(code, message, data)`). Faults that
 * stop a run are errors (`CtnrError` and its classes), not warnings.
 *
 * | code                   | raised by           | what happened                                                          |
 * | ---------------------- | ------------------- | ---------------------------------------------------------------------- |
 * | `LEFT_OUT`             | create              | a FIFO, socket or device, a skipped symlink or empty folder left out   |
 * | `OWN_FILE_LEFT_OUT`    | create              | a name in the source that is the container or its index (hard link)    |
 * | `MISSING_FROM_SOURCE`  | create (resume)     | committed entries no longer in the source; the container keeps them    |
 * | `CHANGED_SINCE_COMMIT` | create (resume)     | a committed file changed since; the container keeps the older version  |
 * | `INDEX_REPAIRED`       | create (resume)     | a torn last index line cut off                                         |
 * | `ENTRIES_DROPPED`      | create (resume)     | entries whose payload is missing or fails its SHA-256 dropped, redone  |
 * | `BYTES_CUT`            | create (resume)     | bytes past the last indexed payload (leftovers, an old trailer) cut    |
 * | `STARTED_OVER`         | create (resume)     | an empty index beside a container without trailer: started from zero   |
 * | `INDEX_LINE_SKIPPED`   | readers, `lenient`  | a malformed or torn index line skipped                                 |
 * | `TEMP_FILES_REMOVED`   | extract             | temp files of a run that was killed removed from the output folder     |
 * | `CONTAINER_CUT`        | extract, `salvage`  | the container is cut short (in its footer), yet no entry was left out  |
 * | `CONTAINER_CUT`        | extract, patterns   | the container is cut short, but only after the entries selected        |
 *
 * @module
 */

/** Stable codes of warnings; see the module doc for each. */
export type WarningCode =
  | "LEFT_OUT"
  | "OWN_FILE_LEFT_OUT"
  | "MISSING_FROM_SOURCE"
  | "CHANGED_SINCE_COMMIT"
  | "INDEX_REPAIRED"
  | "ENTRIES_DROPPED"
  | "BYTES_CUT"
  | "STARTED_OVER"
  | "INDEX_LINE_SKIPPED"
  | "TEMP_FILES_REMOVED"
  | "CONTAINER_CUT"
  | "CACHE_UNUSABLE";

/** One warning. */
export interface CtnrWarning {
  /** Stable code, safe to branch on. */
  code: WarningCode;
  /** One line for people, naming the entry or file. */
  message: string;
  /** The entry it is about, when there is one. */
  relpath?: string;
}

/** Receives warnings. */
export type WarningHandler = (warning: CtnrWarning) => void;

/**
 * Build a warning.
 *
 * @param code its code
 * @param message its message
 * @param relpath the entry it is about
 * @returns the warning
 */
export function warning(code: WarningCode, message: string, relpath?: string): CtnrWarning {
  return relpath === undefined ? { code, message } : { code, message, relpath };
}
