/**
 * A file layer for `createContainer` that loses power at a chosen
 * operation, the way SQLite tests crash safety: it counts every operation
 * (create, append, sync, truncate, rename, remove, folder fsync), lets the
 * one at the cut happen in part, fails every one after it, and then
 * {@link PowerCutLayer.losePower} leaves the files as a machine would find
 * them after the cut:
 *
 * - `power`: every byte written after a file's last fsync is gone;
 * - `torn`: each file keeps a random prefix of its unsynced bytes (torn writes);
 * - `zeroed`: each file keeps its size, but its unsynced bytes read as zeros
 *   (XFS and ext4 with delayed allocation can leave this);
 * - `crash`: a process crash, not a power loss: the kernel keeps everything.
 *
 * Names follow the model of an ordered metadata journal (ext4, XFS): a name
 * change (a file created, renamed or removed) is durable once an fsync of
 * its folder returns; after a loss other than `crash`, the name changes not
 * yet durable survive as a prefix, in order: none, some or all of them.
 *
 * @module
 */

import { dirname, resolve } from "node:path";
import { createContainer, type CreateOptions, DENO_FILE_LAYER } from "../mod.ts";
import type { FileLayer, LayerFile } from "../mod.ts";
import { exists } from "./_helpers.ts";
import { Random, sizeOf } from "./_crash.ts";

/** Thrown by {@link PowerCutLayer} at its cut and at every operation after it. */
export class PowerCut extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PowerCut";
  }
}

/** How the files fare when the power goes; see the module doc. */
export type LossMode = "power" | "torn" | "zeroed" | "crash";

/** Which of the name changes not yet durable survive a loss (other than `crash`). */
export type NamesKept = "none" | "all" | "random";

/** A name change not yet made durable by an fsync of its folder. */
type NameChange =
  | { kind: "create"; path: string }
  | { kind: "rename"; from: string; to: string; replaced: Uint8Array | undefined }
  | { kind: "remove"; path: string; content: Uint8Array };

/** See the module doc. */
export class PowerCutLayer implements FileLayer {
  /** Operations done so far (counting the cut). */
  operations = 0;
  /** The operation the power went out in, once it has. */
  cut: string | undefined;
  /** Every operation, as `append|sync|truncate|create|rename|remove <file name>`, `syncFolder`. */
  readonly log: string[] = [];
  /** The files opened, by their current path. */
  readonly files = new Map<string, PowerCutFile>();
  readonly random: Random;
  readonly tear: boolean;
  #cutAt: number;
  #names: NameChange[] = [];

  /**
   * @param cutAt the operation (1-based) the power goes out in; `Infinity` to count only
   * @param random decides how much of the cut operation happens
   * @param options `tear`: an append cut in the middle writes a random part (default true)
   */
  constructor(cutAt: number, random: Random, options: { tear?: boolean } = {}) {
    this.#cutAt = cutAt;
    this.random = random;
    this.tear = options.tear ?? true;
  }

  async open(path: string): Promise<LayerFile> {
    this.#off(`open "${path}"`);
    if (!(await exists(path))) {
      if (this.step(`create ${nameOf(path)}`)) {
        if (this.random.chance(0.5)) {
          (await DENO_FILE_LAYER.open(path)).close();
          this.#names.push({ kind: "create", path });
          this.cut += " (done)";
        }
        throw new PowerCut(`Power cut in ${this.cut}`);
      }
      this.#names.push({ kind: "create", path });
    }
    const file = new PowerCutFile(this, await DENO_FILE_LAYER.open(path), path);
    this.files.set(path, file);
    return file;
  }

  syncFolder(folder: string): Promise<void> {
    if (this.step("syncFolder")) {
      if (this.random.chance(0.5)) {
        this.#syncNames(folder);
        this.cut += " (done)";
      }
      return Promise.reject(new PowerCut(`Power cut in ${this.cut}`));
    }
    this.#syncNames(folder);
    return Promise.resolve();
  }

  async rename(from: string, to: string): Promise<void> {
    const cut = this.step(`rename ${nameOf(from)} -> ${nameOf(to)}`);
    if (cut && this.random.chance(0.5)) throw new PowerCut(`Power cut in ${this.cut}`);
    const replaced = await exists(to) ? await Deno.readFile(to) : undefined;
    await DENO_FILE_LAYER.rename(from, to);
    this.#names.push({ kind: "rename", from, to, replaced });
    const file = this.files.get(from);
    this.files.delete(from);
    this.files.delete(to);
    if (file) this.files.set(to, file);
    if (cut) {
      this.cut += " (done)";
      throw new PowerCut(`Power cut in ${this.cut}`);
    }
  }

  async remove(path: string): Promise<void> {
    const cut = this.step(`remove ${nameOf(path)}`);
    if (cut && this.random.chance(0.5)) throw new PowerCut(`Power cut in ${this.cut}`);
    const content = await Deno.readFile(path);
    await DENO_FILE_LAYER.remove(path);
    this.#names.push({ kind: "remove", path, content });
    this.files.delete(path);
    if (cut) {
      this.cut += " (done)";
      throw new PowerCut(`Power cut in ${this.cut}`);
    }
  }

  /** Count an operation; `true` when the power goes out in it; throws when it is out already. */
  step(what: string): boolean {
    this.#off(what);
    this.operations++;
    this.log.push(what);
    if (this.operations !== this.#cutAt) return false;
    this.cut = what;
    return true;
  }

  /**
   * Leave the files as the machine would find them after the cut (see {@link LossMode}), and
   * undo the name changes that did not survive.
   *
   * @param mode what happens to unsynced bytes
   * @param names which name changes not yet durable survive (ignored for `crash`)
   * @returns a description of what was lost, for messages
   */
  async losePower(mode: LossMode, names: NamesKept = "random"): Promise<string> {
    for (const [path, file] of this.files) {
      if (!(await exists(path))) continue;
      const size = await sizeOf(path);
      const unsynced = Math.max(0, size - file.synced);
      if (mode === "crash" || unsynced === 0) continue;
      if (mode === "power") await Deno.truncate(path, file.synced);
      else if (mode === "torn") {
        await Deno.truncate(path, file.synced + this.random.int(unsynced + 1));
      } else {
        const handle = await Deno.open(path, { write: true });
        try {
          await handle.seek(file.synced, Deno.SeekMode.Start);
          const zeros = new Uint8Array(unsynced);
          for (let w = 0; w < zeros.length;) w += await handle.write(zeros.subarray(w));
        } finally {
          handle.close();
        }
      }
    }
    if (mode === "crash") return `${mode}, every name kept`;
    const pending = this.#names.length;
    const kept = names === "all" ? pending : names === "none" ? 0 : this.random.int(pending + 1);
    for (const change of this.#names.splice(kept).reverse()) await undo(change);
    return `${mode}, ${kept} of ${pending} unsynced name changes kept`;
  }

  /** A folder fsync: every name change up to the last one in `folder` is durable (journal order). */
  #syncNames(folder: string): void {
    const target = resolve(folder);
    const paths = (c: NameChange) => c.kind === "rename" ? [c.from, c.to] : [c.path];
    const last = this.#names.findLastIndex((c) =>
      paths(c).some((path) => dirname(resolve(path)) === target)
    );
    if (last >= 0) this.#names.splice(0, last + 1);
  }

  #off(what: string): void {
    if (this.cut !== undefined) throw new PowerCut(`Power is off: cannot ${what}`);
  }
}

/** Put a name change back as it was before it. */
async function undo(change: NameChange): Promise<void> {
  if (change.kind === "create") await Deno.remove(change.path).catch(() => {});
  else if (change.kind === "remove") await Deno.writeFile(change.path, change.content);
  else {
    await Deno.rename(change.to, change.from);
    if (change.replaced !== undefined) await Deno.writeFile(change.to, change.replaced);
  }
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

class PowerCutFile implements LayerFile {
  /** Size in bytes that the last sync (or truncate) made durable. */
  synced: number;
  #layer: PowerCutLayer;
  #inner: LayerFile;
  #name: string;

  constructor(layer: PowerCutLayer, inner: LayerFile, path: string) {
    this.#layer = layer;
    this.#inner = inner;
    this.#name = nameOf(path);
    this.synced = inner.size;
  }

  get size(): number {
    return this.#inner.size;
  }

  readAt(position: number, length: number): Promise<Uint8Array> {
    return this.#inner.readAt(position, length);
  }

  async append(bytes: Uint8Array): Promise<void> {
    if (this.#layer.step(`append ${this.#name}`)) {
      const written = this.#layer.tear ? tornLength(bytes, this.#layer.random) : 0;
      if (written > 0) await this.#inner.append(bytes.subarray(0, written));
      this.#layer.cut += ` (${written} of ${bytes.length} bytes written)`;
      throw new PowerCut(`Power cut in ${this.#layer.cut}`);
    }
    await this.#inner.append(bytes);
  }

  async sync(): Promise<void> {
    if (this.#layer.step(`sync ${this.#name}`)) {
      // The fsync may have reached the disk before the power went.
      if (this.#layer.random.chance(0.5)) {
        await this.#inner.sync();
        this.synced = this.#inner.size;
        this.#layer.cut += " (done)";
      }
      throw new PowerCut(`Power cut in ${this.#layer.cut}`);
    }
    await this.#inner.sync();
    this.synced = this.#inner.size;
  }

  async truncate(size: number): Promise<void> {
    if (this.#layer.step(`truncate ${this.#name}`)) {
      if (this.#layer.random.chance(0.5)) {
        await this.#inner.truncate(size);
        this.synced = size;
        this.#layer.cut += " (done)";
      }
      throw new PowerCut(`Power cut in ${this.#layer.cut}`);
    }
    await this.#inner.truncate(size);
    this.synced = size;
  }

  tryLock(): Promise<boolean> {
    return this.#inner.tryLock();
  }

  close(): void {
    this.#inner.close();
  }
}

/** How much of an append reaches the file before the power goes. */
function tornLength(bytes: Uint8Array, random: Random): number {
  if (bytes.length === 0 || random.chance(0.4)) return 0;
  if (random.chance(0.3)) {
    // Just before a newline: the last line is whole JSON without its end.
    const newlines: number[] = [];
    for (let i = bytes.indexOf(0x0a); i >= 0; i = bytes.indexOf(0x0a, i + 1)) newlines.push(i);
    if (newlines.length > 0) return random.pick(newlines);
  }
  return random.int(bytes.length);
}

/** Operations a create with `options` does from the current state (run on a copy). */
export async function countOperations(
  src: string,
  container: string,
  folder: string,
  options: CreateOptions,
): Promise<number> {
  await Deno.mkdir(folder, { recursive: true });
  const copy = `${folder}/c.ctnr`;
  for (const suffix of ["", ".idx"]) {
    if (await exists(container + suffix)) await Deno.copyFile(container + suffix, copy + suffix);
  }
  const layer = new PowerCutLayer(Infinity, new Random(1));
  try {
    await createContainer(src, copy, { ...options, fileLayer: layer });
  } finally {
    await Deno.remove(folder, { recursive: true });
  }
  return layer.operations;
}
