/**
 * The error classes of ctnr. Every fault that ctnr raises on purpose is a
 * {@link CtnrError} with a stable `code` and the process exit code the CLI
 * uses for it (see README, "Exit codes").
 *
 * @module
 */

/** Stable machine-readable error codes, one per kind of fault. */
export type CtnrErrorCode =
  | "USAGE"
  | "INDEX_FORMAT"
  | "INDEX_TORN"
  | "CONTAINER_FORMAT"
  | "NOT_A_CONTAINER"
  | "CONTAINER_CUT"
  | "INDEX_MISSING"
  | "INDEX_CONFLICT"
  | "UNSAFE_ENTRY"
  | "INTEGRITY"
  | "SOURCE"
  | "CONFLICT"
  | "IO"
  | "NOT_FOUND"
  | "BUSY"
  | "ENVIRONMENT"
  | "INTERRUPTED"
  | RemoteErrorCode;

/** Base class of every error ctnr raises on purpose. */
export class CtnrError extends Error {
  /** Stable code, safe to branch on. */
  readonly code: CtnrErrorCode;
  /** Process exit code the CLI uses for this error. */
  readonly exitCode: number;
  /**
   * Library options the message names, each written in backticks (`` `fsyncEvery` ``): the CLI
   * shows each as the flag that sets it (`--fsync-every`).
   */
  readonly options: readonly string[];

  /**
   * Create the error.
   *
   * @param code stable code of the fault
   * @param message human-readable message that names the entry or file
   * @param exitCode process exit code for the CLI
   * @param options standard error options (`cause`), and `options`: the library options the
   *   message names
   */
  constructor(
    code: CtnrErrorCode,
    message: string,
    exitCode = 1,
    options?: ErrorOptions & { options?: readonly string[] },
  ) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    this.options = options?.options ?? [];
  }
}

/** Bad command line or bad option values; the CLI exits 2 and prints a hint. */
export class UsageError extends CtnrError {
  /**
   * Create the error.
   * @param message what is wrong with the call, naming options by their library names in
   *   backticks
   * @param options `options`: the library options the message names
   */
  constructor(message: string, options: { options?: readonly string[] } = {}) {
    super("USAGE", message, 2, options);
  }
}

/** The index is not valid CTNRv1 (bad JSON, bad field, bad UTF-8, over-long line). */
export class IndexFormatError extends CtnrError {
  /**
   * Create the error.
   *
   * @param message what is wrong, naming the line or entry
   * @param code `INDEX_FORMAT`, or `INDEX_TORN` for a torn last line left by a crash
   * @param options `options`: the library options the message names
   */
  constructor(
    message: string,
    code: "INDEX_FORMAT" | "INDEX_TORN" = "INDEX_FORMAT",
    options: { options?: readonly string[] } = {},
  ) {
    super(code, message, 1, options);
  }
}

/**
 * The codes of a {@link ContainerFormatError}: what can be told about a container that cannot be
 * read as it is (README "What ctnr refuses to do").
 *
 * - `CONTAINER_FORMAT`: a damaged trailer or footer, a payload past the payload area
 * - `NOT_A_CONTAINER`: no trailer (whole or cut) and no index: an empty file, a tar, a text
 * - `CONTAINER_CUT`: the file ends before what its index or its trailer says
 * - `INDEX_MISSING`: a container whose index is gone (its trailer header cut, or `salvage`
 *   without any index)
 * - `INDEX_CONFLICT`: the sibling index and the trailer both exist and hold different entries
 */
export type ContainerFormatCode =
  | "CONTAINER_FORMAT"
  | "NOT_A_CONTAINER"
  | "CONTAINER_CUT"
  | "INDEX_MISSING"
  | "INDEX_CONFLICT";

/** The container's bytes are not a CTNRv1 container (no index, bad trailer, cut short). */
export class ContainerFormatError extends CtnrError {
  /**
   * Create the error.
   * @param message what is wrong
   * @param options `options`: the library options the message names; `code`: what kind of
   *   fault (default `CONTAINER_FORMAT`)
   */
  constructor(
    message: string,
    options: { options?: readonly string[]; code?: ContainerFormatCode } = {},
  ) {
    super(options.code ?? "CONTAINER_FORMAT", message, 1, options);
  }
}

/** An entry would write outside the output folder, through a link, or over another entry. */
export class UnsafeEntryError extends CtnrError {
  /**
   * Create the error.
   * @param message the entry and why it is refused
   * @param options `options`: the library options the message names
   */
  constructor(message: string, options: { options?: readonly string[] } = {}) {
    super("UNSAFE_ENTRY", message, 1, options);
  }
}

/** A payload does not match its entry (SHA-256 mismatch, corrupt gzip, early end, size). */
export class IntegrityError extends CtnrError {
  /**
   * Create the error.
   * @param message the entry and the mismatch
   */
  constructor(message: string, options?: ErrorOptions) {
    super("INTEGRITY", message, 1, options);
  }
}

/**
 * A source item could not be read as it was listed (vanished, changed while read, unreadable), or
 * has a name a container cannot hold (`nameRefused`: a backslash, not valid UTF-8, a clash).
 */
export class SourceError extends CtnrError {
  /** The source item's relpath, when it is about one. */
  readonly relpath: string | undefined;
  /** Whether its name is refused (rename it), not its contents unreadable. */
  readonly nameRefused: boolean;

  /**
   * Create the error.
   * @param message the file and what went wrong
   * @param options `cause`; `relpath`: the item; `nameRefused`: its name cannot be stored
   */
  constructor(
    message: string,
    options?: ErrorOptions & { relpath?: string; nameRefused?: boolean },
  ) {
    super("SOURCE", message, 1, options);
    this.relpath = options?.relpath;
    this.nameRefused = options?.nameRefused ?? false;
  }
}

/** The files on disk disagree with the request (container exists without index, etc.). */
export class ConflictError extends CtnrError {
  /**
   * Create the error.
   * @param message what conflicts
   * @param options `options`: the library options the message names
   */
  constructor(message: string, options: { options?: readonly string[] } = {}) {
    super("CONFLICT", message, 1, options);
  }
}

/** Another run is writing the container (it holds its lock); the CLI exits 4. Nothing was changed. */
export class BusyError extends CtnrError {
  /**
   * Create the error.
   * @param message the file and who holds it
   */
  constructor(message: string) {
    super("BUSY", message, 4);
  }
}

/**
 * The codes of a {@link RemoteError}: what a server said about a container read over HTTP.
 * - `REMOTE_DENIED`: 401/403, the URL expired or the credentials are not authorised
 * - `REMOTE_NOT_FOUND`: 404/410, no object at that URL
 * - `REMOTE_CHANGED`: 412 or another size or ETag: the object was replaced while it was read
 * - `REMOTE_PROTOCOL`: the server does not answer Range requests as RFC 9110 section 14 says
 *   (200 instead of 206, a wrong `Content-Range`, a body of another length), or another status
 */
export type RemoteErrorCode =
  | "REMOTE_DENIED"
  | "REMOTE_NOT_FOUND"
  | "REMOTE_CHANGED"
  | "REMOTE_PROTOCOL";

/**
 * A server refused or garbled a read of a container over HTTP (see lib/remote/http_source.ts);
 * the CLI exits 1, as for a local file that is missing or not a container. Network faults that
 * outlast the retries are {@link EnvironmentError}s (exit 5).
 */
export class RemoteError extends CtnrError {
  /** The HTTP status the server answered, when there was one. */
  readonly status: number | undefined;

  /**
   * Create the error.
   * @param code what kind of refusal
   * @param message the URL (without its query) and what the server said
   * @param options `status`: the HTTP status; standard error options
   */
  constructor(
    code: RemoteErrorCode,
    message: string,
    options: ErrorOptions & { status?: number } = {},
  ) {
    super(code, message, 1, options);
    this.status = options.status;
  }
}

/**
 * The machine failed the run: a full disk or quota, an I/O error, a closed or full output
 * (ENOSPC, EDQUOT, EIO, EROFS, EPIPE, EBADF). The CLI exits 5; what was committed stays, and
 * `create` resumes once the cause is fixed.
 */
export class EnvironmentError extends CtnrError {
  /**
   * Create the error.
   * @param message the file, what failed, and what to do
   * @param options standard error options (`cause`: the operating system's error)
   */
  constructor(message: string, options?: ErrorOptions) {
    super("ENVIRONMENT", message, 5, options);
  }
}

/** What each operating-system error code an {@link EnvironmentError} stands for means. */
const ENVIRONMENT_CODES: Record<string, string> = {
  ENOSPC: "no space left on the device",
  EDQUOT: "the disk quota is exhausted",
  EIO: "an input/output error (the disk or the network file system failed)",
  EROFS: "the file system is read-only",
  EPIPE: "the reader of the output went away",
  EBADF: "the output is closed",
};

/**
 * An error of the machine, as an {@link EnvironmentError} naming `path` and what to do; other
 * errors come back as they are.
 *
 * @param error what was thrown
 * @param action what failed, with its file (`Cannot write "c.ctnr"`)
 * @param advice what to do about it (`free space and run create again: it resumes`)
 * @returns the error to throw
 */
export function environmentFault(error: unknown, action: string, advice: string): unknown {
  // The code of the error, or of its cause (an error that crossed a worker boundary).
  const code = (error as { code?: unknown })?.code ??
    ((error as { cause?: { code?: unknown } })?.cause)?.code;
  if (typeof code !== "string" || !(code in ENVIRONMENT_CODES)) return error;
  return new EnvironmentError(`${action}: ${ENVIRONMENT_CODES[code]} (${code}); ${advice}`, {
    cause: error,
  });
}

/**
 * The run was stopped by SIGINT (exit 130), SIGTERM (exit 143) or SIGHUP (exit 129: a closed
 * terminal, an ssh connection dropped) after committing its work.
 */
export class InterruptedError extends CtnrError {
  /**
   * What the run had done when it stopped, when the function that threw says so
   * (`createContainer`: its `CreateResult`, counted up to the stop); else `undefined`.
   */
  readonly result: unknown;

  /**
   * Create the error.
   * @param signal the signal that stopped the run
   * @param options `result`: what the run had done when it stopped
   */
  constructor(signal: "SIGINT" | "SIGTERM" | "SIGHUP", options: { result?: unknown } = {}) {
    super("INTERRUPTED", `Interrupted by ${signal}`, 128 + SIGNAL_NUMBERS[signal]);
    this.result = options.result;
  }
}

const SIGNAL_NUMBERS = { SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const;

/**
 * The signal an aborted run was stopped by (the reason its `AbortSignal` was aborted with).
 *
 * @param signal the run's abort signal, aborted
 * @returns `SIGINT` unless the reason names another signal
 */
export function stoppedBy(signal: AbortSignal): "SIGINT" | "SIGTERM" | "SIGHUP" {
  return signal.reason === "SIGTERM" || signal.reason === "SIGHUP" ? signal.reason : "SIGINT";
}
