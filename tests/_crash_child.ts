/**
 * Child process of tests/crash_phase_test.ts: runs `createContainer` (or
 * `finalizeContainer`) through a file layer that kills this very process
 * with SIGKILL at one aimed operation, so each kill lands in a known phase.
 *
 * Argument: a JSON {@link ChildRequest}. Writes each committed entry as one
 * JSON line on stdout, and `phase: <name>` on stderr just before the kill
 * (the parent asserts it), or `phase: none` when the aim was never met.
 *
 * @module
 */

import {
  createContainer,
  type CreateOptions,
  DENO_FILE_LAYER,
  type FileLayer,
  finalizeContainer,
  FOOTER_MAGIC,
  type LayerFile,
  TRAILER_MAGIC,
} from "../mod.ts";

/** Where to kill: the `nth` operation of kind `op` on `file` (1-based). */
export interface Aim {
  /** Name of the phase, echoed before the kill. */
  phase: string;
  op: "append" | "sync" | "truncate" | "rename" | "remove" | "syncFolder";
  /** Which file the operation is on (by its name: `.idx`, `.ctnr-tmp`, else the container). */
  file: "container" | "index" | "tmp" | "any";
  /** Count only appends at or after the trailer magic (finalize). */
  trailer?: "header" | "index" | "footer";
  nth: number;
  /** Fraction of an aimed append written before the kill (0: none). */
  written?: number;
}

/** What the child runs. */
export interface ChildRequest {
  src: string;
  container: string;
  /** `createContainer` options (JSON-safe ones). */
  options: CreateOptions;
  /** Run `finalizeContainer` instead of `createContainer`. */
  finalizeOnly?: boolean;
  aim: Aim;
}

if (import.meta.main) {
  const request: ChildRequest = JSON.parse(Deno.args[0]!);
  const layer = killingLayer(request.aim);
  const encoder = new TextEncoder();
  if (request.finalizeOnly) {
    await finalizeContainer(request.container, { fileLayer: layer });
  } else {
    await createContainer(request.src, request.container, {
      ...request.options,
      fileLayer: layer,
      onEntry: (entry) =>
        Deno.stdout.writeSync(encoder.encode(
          JSON.stringify({
            relpath: entry.relpath,
            offset: entry.offset,
            sha256: entry.sha256,
            entryType: entry.entryType,
          }) + "\n",
        )),
    });
  }
  console.error("phase: none");
}

function kind(path: string): Aim["file"] {
  return path.endsWith(".ctnr-tmp") ? "tmp" : path.endsWith(".idx") ? "index" : "container";
}

function die(aim: Aim): never {
  console.error(`phase: ${aim.phase}`);
  Deno.kill(Deno.pid, "SIGKILL");
  throw new Error("unreachable");
}

/** The real file layer, but the aimed operation kills the process. */
function killingLayer(aim: Aim): FileLayer {
  let seen = 0;
  let trailerPart: "header" | "index" | "footer" | undefined;
  const hit = (op: Aim["op"], path: string | undefined) => {
    if (op !== aim.op || (aim.file !== "any" && path !== undefined && kind(path) !== aim.file)) {
      return false;
    }
    return ++seen === aim.nth;
  };
  return {
    async open(path: string): Promise<LayerFile> {
      const file = await DENO_FILE_LAYER.open(path);
      return {
        get size() {
          return file.size;
        },
        readAt: (position, length) => file.readAt(position, length),
        async append(bytes) {
          if (kind(path) === "container") {
            if (startsWith(bytes, TRAILER_MAGIC)) trailerPart = "header";
            else if (bytes.length === 16 && startsWith(bytes.subarray(8), FOOTER_MAGIC)) {
              trailerPart = "footer";
            } else if (trailerPart === "header") trailerPart = "index";
          }
          const aimed = aim.trailer === undefined || aim.trailer === trailerPart;
          if (aimed && hit("append", path)) {
            const part = Math.floor(bytes.length * (aim.written ?? 0));
            if (part > 0) await file.append(bytes.subarray(0, part));
            die(aim);
          }
          await file.append(bytes);
        },
        async sync() {
          const aimed = aim.trailer === undefined || aim.trailer === trailerPart;
          if (aimed && hit("sync", path)) die(aim);
          await file.sync();
        },
        async truncate(size) {
          if (hit("truncate", path)) die(aim);
          await file.truncate(size);
        },
        tryLock: () => file.tryLock(),
        close: () => file.close(),
      };
    },
    async syncFolder(folder) {
      if (hit("syncFolder", undefined)) die(aim);
      await DENO_FILE_LAYER.syncFolder(folder);
    },
    async rename(from, to) {
      if (hit("rename", from)) die(aim);
      await DENO_FILE_LAYER.rename(from, to);
    },
    async remove(path) {
      if (hit("remove", path)) die(aim);
      await DENO_FILE_LAYER.remove(path);
    },
  };
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}
