/**
 * The rule that a set of relpaths can be laid out as one tree: no two equal
 * (after Unicode NFC normalisation, and case folding where asked), and no
 * file or link where another entry needs a folder. Shared by `extract`'s
 * plan, which refuses an index that breaks it, and `create`, which refuses
 * a source item that would (on resume, the tree may have changed since the
 * committed entries were written). Memory is bounded: 96-bit hashes.
 *
 * @module
 */

import { RelpathSet } from "./_relpath_set.ts";

const LEAF = 1;
const FOLDER = 2;

/** Admits relpaths one by one, refusing those that clash with the ones admitted before. */
export class PathGuard {
  #seen = new RelpathSet(); // every key, valued LEAF (file, link) or FOLDER (dir entry)
  #parents = new RelpathSet(); // every folder some admitted entry needs
  #foldCase: boolean;
  #lastParent = "";

  /** @param foldCase treat names that differ only in case as equal */
  constructor(foldCase = false) {
    this.#foldCase = foldCase;
  }

  /**
   * Admit `relpath` unless it clashes with an admitted one.
   *
   * @param relpath a relpath already checked by `checkRelpath`
   * @param isLeaf a file or link (nothing may lie below it), not a folder entry
   * @returns `undefined` when admitted, else why it is refused
   */
  admit(relpath: string, isLeaf: boolean): string | undefined {
    const nfc = relpath.normalize("NFC");
    const k = this.#foldCase ? nfc.toLowerCase() : nfc;
    if (this.#seen.has(k)) {
      return "another entry has the same path, or one equal to it after Unicode NFC normalisation" +
        (this.#foldCase ? " or case folding" : "");
    }
    if (isLeaf && this.#parents.has(k)) {
      return "it is a file or link but other entries lie below it";
    }
    const slash = k.lastIndexOf("/");
    const parent = slash < 0 ? "" : k.slice(0, slash);
    if (parent !== this.#lastParent) {
      // Check every new ancestor first, then record them: a refused relpath leaves no trace.
      const added: string[] = [];
      for (let p = parent; p !== ""; p = p.slice(0, Math.max(0, p.lastIndexOf("/")))) {
        if (this.#seen.get(p) === LEAF) return `its folder "${p}" is a file or link entry`;
        if (this.#parents.has(p)) break; // its ancestors were checked when it was added
        added.push(p);
      }
      for (const p of added) this.#parents.add(p);
      this.#lastParent = parent;
    }
    this.#seen.add(k, isLeaf ? LEAF : FOLDER);
    return undefined;
  }
}
