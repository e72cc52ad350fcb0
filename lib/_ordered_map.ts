/**
 * Run an async function over an async iterable with several calls in
 * flight, yielding the results in input order.
 *
 * @module
 */

/**
 * Map `source` through `fn` with at most `concurrency` calls in flight.
 *
 * @param source the inputs, pulled as places free up
 * @param fn the async work per input
 * @param concurrency calls in flight at most (at least 1)
 * @returns the results, in the order of the inputs
 */
export async function* orderedMap<T, R>(
  source: AsyncIterable<T>,
  fn: (item: T) => Promise<R>,
  concurrency: number,
): AsyncGenerator<R> {
  const iterator = source[Symbol.asyncIterator]();
  const queue: Promise<R>[] = [];
  let done = false;
  try {
    for (;;) {
      while (!done && queue.length < concurrency) {
        const next = await iterator.next();
        if (next.done) {
          done = true;
          break;
        }
        const pending = fn(next.value);
        pending.catch(() => {}); // rethrown when its turn comes
        queue.push(pending);
      }
      const head = queue.shift();
      if (head === undefined) return;
      yield await head;
    }
  } finally {
    if (!done) await iterator.return?.();
  }
}
