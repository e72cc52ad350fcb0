/**
 * The link rule: a symlink from a container may only point inside the
 * output folder, judged on its target's text (never by following it), with
 * the links met on the way counted as such.
 *
 * @module
 */

import { UnsafeEntryError } from "../errors.ts";
import type { IndexEntry } from "../format/entry.ts";

/**
 * Refuse a symlink whose target is absolute, climbs out of the output
 * folder when resolved from the link's folder, or climbs (`..`) after
 * passing through another link: a link's real depth can differ from its
 * lexical one (`t -> .` then `s -> t/..` leaves the folder), so no `..` may
 * follow a component that is a link.
 *
 * @param entry a symlink entry
 * @param isLink tells whether a relpath (under the output folder) is a link
 * @param verb what failed (`Cannot verify symlink ...`)
 * @throws {UnsafeEntryError} when the target leaves the output folder
 */
export function checkLinkTarget(
  entry: IndexEntry,
  isLink?: (relpath: string) => boolean,
  verb = "extract",
): void {
  const target = entry.linkTarget ?? "";
  const refuse = (why: string) =>
    new UnsafeEntryError(
      `Cannot ${verb} symlink "${entry.relpath}" -> "${target}": ${why} (pass \`allowUnsafeLinks\` to keep it)`,
      { options: ["allowUnsafeLinks"] },
    );
  if (target.startsWith("/") || /^[A-Za-z]:/.test(target) || target.includes("\\")) {
    throw refuse("absolute target");
  }
  const stack = entry.relpath.split("/").slice(0, -1);
  let throughLink: string | undefined;
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (throughLink !== undefined) throw refuse(`target climbs out of the link "${throughLink}"`);
      if (stack.length === 0) throw refuse("target leaves the output folder");
      stack.pop();
    } else {
      stack.push(part);
      if (throughLink === undefined && isLink?.(stack.join("/"))) throughLink = stack.join("/");
    }
  }
}
