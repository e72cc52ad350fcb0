/**
 * Opening a container for the reading commands (`list`, `info`, `cat`).
 *
 * @module
 */

import { ContainerReader, UsageError } from "../mod.ts";
import { type CliIo, printableMessage } from "./output.ts";
import type { Flag } from "./flags.ts";
import type { RunSummary } from "./summary.ts";

/** `--container FILE` of the reading commands (`list`, `info`, `cat`). */
export const CONTAINER_FLAG = {
  name: "container",
  type: "string",
  arg: "FILE",
  origin: "ctnr",
  help: "container to read",
} as const satisfies Flag;

/** `--index FILE` of the reading commands. */
export const INDEX_FLAG = {
  name: "index",
  type: "string",
  arg: "FILE",
  origin: "ctnr",
  option: "index",
  help: "external index (preferred over the embedded one)",
} as const satisfies Flag;

/** `--lenient` of the reading commands. */
export const LENIENT_FLAG = {
  name: "lenient",
  type: "boolean",
  origin: "ctnr",
  option: "lenient",
  help: "skip malformed index lines with a warning",
} as const satisfies Flag;

/**
 * Open `container` with the commands' options, warnings printed to stderr.
 *
 * @param container the container path, or `undefined` when none was given
 * @param index an external index
 * @param lenient skip malformed index lines
 * @param io where warnings go
 * @param summary counts the warnings, when the command has a summary
 * @returns the open container
 * @throws {UsageError} when no container was given
 */
export async function openReader(
  container: string | undefined,
  index: string | undefined,
  lenient: boolean | undefined,
  io: CliIo,
  summary?: RunSummary,
): Promise<ContainerReader> {
  if (container === undefined) throw new UsageError("Missing --container FILE");
  const options: Parameters<typeof ContainerReader.open>[1] = {
    lenient: lenient ?? false,
    onWarning: (warning) => {
      summary?.warning(warning);
      io.stderr(`ctnr: warning: ${printableMessage(warning.message)}`);
    },
  };
  if (index !== undefined) options.index = index;
  return await ContainerReader.open(container, options);
}
