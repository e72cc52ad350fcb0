/**
 * Worker of tests/fuzz_test.ts: runs one `extractContainer` per request and
 * answers with its outcome. The test's thread only waits, so its watchdog
 * timer fires even when a case spins in a synchronous loop here; it then
 * terminates this worker (and with it the write workers it started).
 *
 * @module
 */

import { extractContainer, type ExtractOptions } from "../mod.ts";

/** One case: extract `container` into `outdir`. */
export interface FuzzRequest {
  id: number;
  container: string;
  outdir: string;
  options: ExtractOptions;
}

/** An error of the outcome, or one of its causes. */
export interface ErrorLink {
  name: string;
  message: string;
  /** `CtnrError.code`, or an OS error's ("ENAMETOOLONG") or zlib error's code. */
  code?: string;
  stack?: string;
}

/** The answer to a {@link FuzzRequest}. */
export interface FuzzReply {
  id: number;
  /** File entries of the validated plan (above 512 they go to write workers); -1: no plan. */
  planFiles: number;
  /** `null` on success; else the error, then each `cause` in turn. */
  errors: ErrorLink[] | null;
  /**
   * Every entry that failed, as its error chain, in the order reported: the first
   * one is thrown; one from a write worker may come after another entry's.
   */
  entryErrors: ErrorLink[][];
}

const scope = self as unknown as {
  onmessage: ((event: MessageEvent<FuzzRequest>) => void) | null;
  postMessage(message: FuzzReply): void;
};

scope.onmessage = async ({ data: { id, container, outdir, options } }) => {
  let planFiles = -1;
  let errors: ErrorLink[] | null = null;
  const entryErrors: ErrorLink[][] = [];
  try {
    await extractContainer(container, outdir, {
      ...options,
      onPlan: (plan) => planFiles = plan.files,
      onEntryError: (_, error) => entryErrors.push(errorChain(error)),
    });
  } catch (error) {
    errors = errorChain(error);
  }
  scope.postMessage({ id, planFiles, errors, entryErrors });
};

/** `error` and its causes, by name (at most 8: a chain may loop). */
function errorChain(error: unknown): ErrorLink[] {
  const links: ErrorLink[] = [];
  for (
    let link = error;
    link !== undefined && links.length < 8;
    link = link instanceof Error ? link.cause : undefined
  ) {
    const record: ErrorLink = link instanceof Error
      ? { name: link.name, message: link.message }
      : { name: `(thrown ${typeof link})`, message: String(link) };
    const code = (link as { code?: unknown } | null)?.code;
    if (typeof code === "string") record.code = code;
    if (link instanceof Error && link.stack !== undefined) record.stack = link.stack;
    links.push(record);
  }
  return links;
}
