/**
 * A small pool of module workers that answer requests by id. Requests go to
 * the worker with the fewest in flight; results come back as promises.
 *
 * @module
 */

/**
 * Most files in one batch for a worker (create's read batches, extract's write batches):
 * 100,000 x 4 KiB created in 1.41 s with 256, 1.61 s with 64 (bench/compare.ts).
 */
export const BATCH_FILES = 256;
/** Bytes a batch for a worker aims at (create reads at most twice this). */
export const BATCH_BYTES = 1 << 20;
/**
 * Files up to which no worker is started: the first 512 are read (create) or written (extract)
 * on the main thread, so a small tree does not pay for starting a worker (about 40 ms).
 */
export const WORKER_THRESHOLD = 512;

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** Shape of a worker's answer. */
export type WorkerReply<R> = { id: number; result: R } | {
  id: number;
  error: { name: string; message: string };
};

/** Pool of module workers running the script at `url`. */
export class WorkerPool<Q, R> {
  #workers: Worker[] = [];
  #pending: Map<number, Pending>[] = [];
  #nextId = 0;

  /**
   * @param url module URL of the worker script
   * @param size number of workers (at least 1)
   */
  constructor(url: URL, size: number) {
    for (let i = 0; i < Math.max(1, size); i++) {
      const worker = new Worker(url, { type: "module" });
      const pending = new Map<number, Pending>();
      worker.onmessage = (event: MessageEvent<WorkerReply<R>>) => {
        const reply = event.data;
        const waiter = pending.get(reply.id);
        if (!waiter) return;
        pending.delete(reply.id);
        if ("error" in reply) {
          const error = new Error(reply.error.message);
          error.name = reply.error.name;
          waiter.reject(error);
        } else waiter.resolve(reply.result);
      };
      worker.onerror = (event) => {
        event.preventDefault();
        for (const waiter of pending.values()) waiter.reject(new Error(event.message));
        pending.clear();
      };
      this.#workers.push(worker);
      this.#pending.push(pending);
    }
  }

  /** Number of workers. */
  get size(): number {
    return this.#workers.length;
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.#pending.reduce((n, p) => n + p.size, 0);
  }

  /**
   * Send `request` to the least busy worker, or to worker number `worker`.
   *
   * @param request structured-cloneable request
   * @param transfer buffers to move instead of copy
   * @param worker the worker to use (taken modulo the pool size); default: the least busy
   * @returns the worker's result
   */
  run(request: Q, transfer: Transferable[] = [], worker?: number): Promise<R> {
    let best = worker === undefined ? 0 : worker % this.#workers.length;
    for (let i = 1; worker === undefined && i < this.#workers.length; i++) {
      if (this.#pending[i]!.size < this.#pending[best]!.size) best = i;
    }
    const id = this.#nextId++;
    return new Promise<R>((resolve, reject) => {
      this.#pending[best]!.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.#workers[best]!.postMessage({ id, request }, transfer);
    });
  }

  /** Stop every worker; requests in flight are rejected. */
  terminate(): void {
    for (const worker of this.#workers) worker.terminate();
    for (const pending of this.#pending) {
      for (const waiter of pending.values()) waiter.reject(new Error("Worker pool terminated"));
      pending.clear();
    }
  }
}

/**
 * Serve requests inside a worker with `handler`.
 *
 * @param handler computes a result and the buffers to transfer back
 */
export function serveRequests<Q, R>(
  handler: (request: Q) => Promise<{ result: R; transfer?: Transferable[] }>,
): void {
  const scope = self as unknown as {
    onmessage: (event: MessageEvent<{ id: number; request: Q }>) => void;
    postMessage: (message: unknown, transfer?: Transferable[]) => void;
  };
  scope.onmessage = async (event) => {
    const { id, request } = event.data;
    try {
      const { result, transfer } = await handler(request);
      scope.postMessage({ id, result }, transfer ?? []);
    } catch (error) {
      const e = error as Error;
      scope.postMessage({
        id,
        error: { name: e?.name ?? "Error", message: e?.message ?? String(e) },
      });
    }
  };
}
