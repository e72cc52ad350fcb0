/**
 * A container read where it lies, over HTTP: one object read through byte ranges (RFC 9110
 * section 14), as a {@link RandomAccess}. The readers above it (trailer, index, payloads) are
 * the ones that read local files.
 *
 * Requests, as remote readers of zip and Parquet do (remotezip, DuckDB httpfs, fsspec):
 * - opening costs one GET of the last {@link TAIL_BYTES} (`Range: bytes=-N`): its
 *   `Content-Range` gives the size, its `ETag` pins the object, its body holds ctnr's footer and,
 *   for a small container, the whole index. No HEAD (a presigned GET URL answers HEAD with 403).
 *   A server that refuses suffix ranges is asked `bytes=0-0`, then for the tail.
 * - every later request carries `If-Match` with that ETag (RFC 9110 section 13.1.1): an object
 *   replaced while it is read answers 412, a {@link RemoteError} `REMOTE_CHANGED`.
 * - reads announced with {@link HttpSource.plan} are coalesced into ranges of at most
 *   `maxRange` bytes (neighbours at most `maxGap` apart), fetched `connections` at a time ahead
 *   of the reader; never multi-range requests.
 * - network errors, bodies cut short, idle connections, 408, 429 and 5xx are retried with
 *   jittered exponential backoff (`Retry-After` honoured), a range resumed from its last byte
 *   received; 401/403/404/410/412 are not retried.
 *
 * @module
 */

import {
  ContainerFormatError,
  EnvironmentError,
  InterruptedError,
  RemoteError,
  stoppedBy,
} from "../errors.ts";
import type { RandomAccess } from "../io/random_access.ts";

/** Bytes the first request asks for from the end of the object: the footer and a small index. */
export const TAIL_BYTES = 1 << 20;
/** Default most bytes one request asks for. */
export const DEFAULT_MAX_RANGE = 8 << 20;
/** Default largest gap between two planned reads that one request still spans. */
export const DEFAULT_MAX_GAP = 64 << 10;
/** Default requests in flight. */
export const DEFAULT_CONNECTIONS = 8;

/** What a remote source did, for `-v` and `--json`. Updated in place. */
export interface RemoteStats {
  /** HTTP requests sent (retries included). */
  requests: number;
  /** Bytes of response bodies received. */
  bytesReceived: number;
  /** Requests sent again after a fault. */
  retries: number;
}

/** A new {@link RemoteStats} at zero. */
export function remoteStats(): RemoteStats {
  return { requests: 0, bytesReceived: 0, retries: 0 };
}

/** Options of {@link HttpSource.open}. */
export interface HttpSourceOptions {
  /** Requests in flight for planned reads. @default 8 */
  connections?: number;
  /** Most bytes one request asks for, in bytes. @default 8 MiB */
  maxRange?: number;
  /** Largest gap in bytes between planned reads that one request spans. @default 64 KiB */
  maxGap?: number;
  /** Attempts after the first one, per range, without progress. @default 6 */
  retries?: number;
  /** Milliseconds without a byte (headers or body) before a request is given up and retried. @default 30000 */
  idleTimeout?: number;
  /** First backoff in milliseconds (doubled per attempt, jittered). @default 250 */
  backoff?: number;
  /** Longest wait in milliseconds, `Retry-After` included. @default 30000 */
  maxBackoff?: number;
  /** Stops every request. */
  signal?: AbortSignal;
  /** Signs each request (AWS Signature V4 for `s3://`); called again for each retry. */
  sign?: (request: Request) => Promise<Request>;
  /** The fetch to use. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Counts requests, bytes and retries. */
  stats?: RemoteStats;
  /** The name used in messages. @default the URL without its query */
  name?: string;
}

/** What pins one version of an object: its size and ETag. */
export interface RemoteVersion {
  /** Size in bytes. */
  size: number;
  /** The strong ETag, or `undefined` when the server gives none (then only the size is checked). */
  etag: string | undefined;
}

interface Block {
  start: number;
  end: number;
  bytes: Promise<Uint8Array>;
}

/**
 * The URL without its query and fragment: how a URL is named in messages (a presigned URL's
 * signature stays out of logs) and keyed in the index cache.
 *
 * @param url an http(s) URL
 * @returns the URL up to its path
 */
export function urlWithoutQuery(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.search = "";
    parsed.hash = "";
    parsed.username = "";
    parsed.password = "";
    return parsed.href;
  } catch {
    return url.replace(/[?#].*$/s, "");
  }
}

/** Whether `path` names a remote object (`http://`, `https://`, `s3://`) rather than a file. */
export function isRemote(path: string): boolean {
  return /^(https?|s3):\/\//i.test(path);
}

/**
 * One object on an HTTP server, read by byte ranges.
 *
 * @example
 * ```ts ignore
 * const source = await HttpSource.open("https://example.org/data.ctnr");
 * const footer = await source.readAt(source.size - 16, 16);
 * source.close();
 * ```
 */
export class HttpSource implements RandomAccess {
  /** Size in bytes of the object. */
  readonly size: number;
  /** The URL read. */
  readonly url: string;
  /** The URL without its query, for messages. */
  readonly name: string;
  /** What the requests did. */
  readonly stats: RemoteStats;
  #etag: string | undefined;
  /** Whether a request has confirmed the version (a source made from a cached version has not). */
  #confirmed: boolean;
  #options: HttpSourceOptions;
  #fetch: typeof fetch;
  #abort = new AbortController();
  #held: { start: number; bytes: Uint8Array } | undefined;
  #plan: Planner | undefined;

  private constructor(
    url: string,
    version: RemoteVersion,
    confirmed: boolean,
    options: HttpSourceOptions,
    held?: { start: number; bytes: Uint8Array },
  ) {
    this.url = url;
    this.name = options.name ?? urlWithoutQuery(url);
    this.size = version.size;
    this.#etag = version.etag;
    this.#confirmed = confirmed;
    this.#options = options;
    this.#fetch = options.fetch ?? fetch;
    this.stats = options.stats ?? remoteStats();
    this.#held = held;
    options.signal?.addEventListener("abort", () => this.#abort.abort(options.signal!.reason), {
      once: true,
    });
  }

  /**
   * Open an object with one request: a suffix range of {@link TAIL_BYTES}, kept in memory.
   *
   * @param url http(s) URL of the object (a presigned URL as it is)
   * @param options connections, ranges, retries, signing
   * @returns the open source; `close()` it
   * @throws {RemoteError} `REMOTE_NOT_FOUND` (404/410), `REMOTE_DENIED` (401/403),
   *   `REMOTE_PROTOCOL` (a server that does not answer Range requests, or garbles them)
   * @throws {EnvironmentError} when the network fails past the retries
   */
  static async open(url: string, options: HttpSourceOptions = {}): Promise<HttpSource> {
    options = { ...options, stats: options.stats ?? remoteStats() };
    const probe = new HttpSource(url, { size: 0, etag: undefined }, false, options);
    try {
      const { version, tail } = await probe.#openRequest();
      return new HttpSource(url, version, true, options, tail);
    } finally {
      probe.close();
    }
  }

  /**
   * A source for a version known from before (the index cache), opened without a request: the
   * first request (and every one) carries `If-Match` with its ETag and checks its size.
   *
   * @param url http(s) URL of the object
   * @param version the size and ETag it had
   * @param options as {@link HttpSource.open}
   * @returns the source; `close()` it
   */
  static fromVersion(
    url: string,
    version: RemoteVersion,
    options: HttpSourceOptions = {},
  ): HttpSource {
    return new HttpSource(url, version, false, options);
  }

  /** The size and ETag every request is checked against. */
  get version(): RemoteVersion {
    return { size: this.size, etag: this.#etag };
  }

  /** Whether a request has confirmed that the object still has {@link HttpSource.version}. */
  get confirmed(): boolean {
    return this.#confirmed;
  }

  /**
   * Confirm the version with one request of one byte (`bytes=0-0`), when no request has yet.
   *
   * @throws {RemoteError} `REMOTE_CHANGED` when the object is not the one known
   */
  async confirm(): Promise<void> {
    if (this.#confirmed) return;
    if (this.size > 0) await this.#range(0, 1);
    else {
      const { version } = await this.#openRequest();
      this.#checkVersion(version.size, version.etag, 200);
      this.#confirmed = true;
    }
  }

  /**
   * The bytes at `position`: from the tail read at open, from a planned read, or with a
   * request of their own.
   *
   * @param position offset in bytes
   * @param length bytes to read
   * @returns exactly `length` bytes
   * @throws {ContainerFormatError} when the object ends first
   * @throws {RemoteError} as {@link HttpSource.open}, and `REMOTE_CHANGED`
   */
  async readAt(position: number, length: number): Promise<Uint8Array> {
    if (position < 0 || position + length > this.size) {
      throw new ContainerFormatError(
        `Cannot read "${this.name}": ends at byte ${this.size}, ` +
          `${position + length - this.size} bytes short of byte ${position + length}`,
      );
    }
    if (length === 0) return new Uint8Array(0);
    if (this.holds(position, length)) {
      const { start, bytes } = this.#held!;
      return bytes.subarray(position - start, position - start + length);
    }
    const planned = await this.#plan?.read(position, length);
    if (planned !== undefined) return planned;
    return await this.#range(position, position + length);
  }

  /**
   * The bytes at `position` as {@link HttpSource.readAt} reads them, in the longer stretch that
   * holds them when there is one in memory: the tail read at open, or the planned request
   * that fetched them (a view, not a copy). A caller reading many small neighbours takes the
   * next ones from the same stretch without a call each (lib/extract/read_window.ts).
   *
   * @param position offset in bytes
   * @param length bytes to read
   * @returns `bytes`, which hold `[position, position + length)`, and `start`, the offset of
   *   `bytes[0]`
   * @throws as {@link HttpSource.readAt}
   */
  async readSpan(position: number, length: number): Promise<{ start: number; bytes: Uint8Array }> {
    if (length > 0 && this.holds(position, length)) return this.#held!;
    const planned = length > 0 && position >= 0 && position + length <= this.size
      ? await this.#plan?.span(position, length)
      : undefined;
    if (planned !== undefined) return planned;
    return { start: position, bytes: await this.readAt(position, length) };
  }

  /**
   * Announce the reads to come, in the order they will come: each range `[start, end)` in
   * bytes. Neighbours are joined into requests of at most `maxRange` bytes (a gap of at most
   * `maxGap` read through) and fetched `connections` at a time ahead of the reads; a read that
   * passes a request's end frees it. Replaces the plan before.
   *
   * @param ranges byte ranges, pulled as the reads advance (memory stays bounded)
   * @param options `maxRange`: most bytes per request for this plan (an index is read in
   *   {@link DEFAULT_MAX_RANGE} requests whatever `--max-range` says) @default the source's
   */
  plan(
    ranges: AsyncIterable<readonly [number, number]> | Iterable<readonly [number, number]>,
    options: { maxRange?: number } = {},
  ): void {
    this.#plan?.stop();
    this.#plan = new Planner(this, ranges, {
      connections: Math.max(1, this.#options.connections ?? DEFAULT_CONNECTIONS),
      maxRange: Math.max(1, options.maxRange ?? this.#options.maxRange ?? DEFAULT_MAX_RANGE),
      maxGap: Math.max(0, this.#options.maxGap ?? DEFAULT_MAX_GAP),
    });
  }

  /**
   * Whether `[position, position + length)` lies in the tail read at open (reading it costs no
   * request).
   */
  holds(position: number, length: number): boolean {
    const held = this.#held;
    return held !== undefined && position >= held.start &&
      position - held.start + length <= held.bytes.length;
  }

  /** Stop every request in flight. */
  close(): void {
    this.#plan?.stop();
    this.#plan = undefined;
    this.#abort.abort();
  }

  /** Fetch `[start, end)` (within the object), resumed across faults. */
  fetchRange(start: number, end: number): Promise<Uint8Array> {
    return this.#range(start, end);
  }

  async #range(start: number, end: number): Promise<Uint8Array> {
    const into = new Uint8Array(end - start);
    let got = 0;
    let failures = 0;
    for (;;) {
      const attempt = await this.#attempt(
        `bytes=${start + got}-${end - 1}`,
        async (response, idle) => {
          if (response.status === 200) {
            // The whole object: accepted only when that is what was asked for.
            if (start + got !== 0 || end !== this.size) {
              throw this.#noRanges(response);
            }
            this.#checkVersion(lengthOf(response) ?? this.size, etagOf(response), 200);
          } else {
            const range = contentRange(response);
            if (range === undefined || range.start !== start + got || range.end !== end - 1) {
              throw new RemoteError(
                "REMOTE_PROTOCOL",
                `Cannot read "${this.name}": asked for bytes ${start + got}-${
                  end - 1
                }, the server ` +
                  `answered Content-Range "${response.headers.get("content-range") ?? ""}"`,
                { status: response.status },
              );
            }
            this.#checkVersion(range.size ?? this.size, etagOf(response), response.status);
          }
          return await this.#body(response, into, got, idle);
        },
      );
      if (attempt.ok) {
        this.#confirmed = true;
        return into;
      }
      if (attempt.received > 0) failures = 0; // progress: the range goes on from there
      got += attempt.received;
      if (got === into.length) return into; // a fault after the last byte
      failures++;
      await this.#wait(attempt, failures);
    }
  }

  /** The first request: the size, the ETag and the tail. */
  async #openRequest(): Promise<{
    version: RemoteVersion;
    tail: { start: number; bytes: Uint8Array } | undefined;
  }> {
    let failures = 0;
    let range = `bytes=-${TAIL_BYTES}`;
    for (;;) {
      const attempt = await this.#attempt(range, async (response, idle) => {
        const etag = etagOf(response);
        if (response.status === 416) {
          // A range no byte satisfies: an empty object (`bytes */0`).
          const size = unsatisfiedSize(response);
          await response.body?.cancel();
          if (size === 0) return { version: { size: 0, etag }, tail: undefined };
          if (range === "bytes=0-0") throw this.#noRanges(response);
          return "no-suffix" as const;
        }
        if (response.status === 200) {
          const length = lengthOf(response);
          if (length !== undefined && length <= TAIL_BYTES) {
            // A small object sent whole: what was asked for, and no more.
            const bytes = new Uint8Array(length);
            const read = await this.#body(response, bytes, 0, idle);
            if (!read.ok) return read;
            return { version: { size: length, etag }, tail: { start: 0, bytes } };
          }
          await response.body?.cancel();
          if (range !== "bytes=0-0") return "no-suffix" as const;
          throw this.#noRanges(response, length);
        }
        const parsed = contentRange(response);
        if (parsed === undefined || parsed.size === undefined) {
          throw new RemoteError(
            "REMOTE_PROTOCOL",
            `Cannot read "${this.name}": the server answered ${response.status} without a ` +
              `whole Content-Range ("${response.headers.get("content-range") ?? ""}")`,
            { status: response.status },
          );
        }
        if (range === "bytes=0-0") {
          await response.body?.cancel();
          return { version: { size: parsed.size, etag }, tail: undefined, sizeOnly: true };
        }
        if (parsed.end !== parsed.size - 1) {
          throw new RemoteError(
            "REMOTE_PROTOCOL",
            `Cannot read "${this.name}": asked for its last bytes, the server answered ` +
              `Content-Range "${response.headers.get("content-range")}"`,
            { status: response.status },
          );
        }
        const bytes = new Uint8Array(parsed.end - parsed.start + 1);
        const read = await this.#body(response, bytes, 0, idle);
        if (!read.ok) return read;
        return { version: { size: parsed.size, etag }, tail: { start: parsed.start, bytes } };
      });
      if (attempt.ok) {
        const value = attempt.value;
        if (value === "no-suffix") {
          range = "bytes=0-0";
          continue;
        }
        if ("sizeOnly" in value) {
          // Suffix ranges refused, plain ones answered: the tail by a plain range.
          this.#etag = value.version.etag;
          (this as { size: number }).size = value.version.size;
          const start = Math.max(0, value.version.size - TAIL_BYTES);
          const bytes = value.version.size === 0
            ? new Uint8Array(0)
            : await this.#range(start, value.version.size);
          return { version: value.version, tail: { start, bytes } };
        }
        return value;
      }
      failures++;
      await this.#wait(attempt, failures);
    }
  }

  /**
   * One request for `range`, its response handed to `use` when its status is one to use.
   * Faults worth a retry come back as `{ ok: false }` with what was received; the others throw.
   */
  async #attempt<T>(
    range: string,
    use: (response: Response, idle: IdleTimer) => Promise<T | Failure>,
  ): Promise<{ ok: true; value: T } | Failure> {
    const headers = new Headers({ Range: range });
    if (this.#etag !== undefined) headers.set("If-Match", this.#etag);
    const idle = new IdleTimer(this.#options.idleTimeout ?? 30_000, this.#abort.signal);
    try {
      let request = new Request(this.url, { headers });
      if (this.#options.sign) request = await this.#options.sign(request);
      this.stats.requests++;
      let response: Response;
      try {
        // The signal given here: a signer may build a new Request without it.
        response = await this.#fetch(request, { signal: idle.signal });
      } catch (error) {
        this.#throwIfStopped();
        if (error instanceof Deno.errors.NotCapable) throw error; // no --allow-net: not retried
        if (/redirect/i.test((error as Error)?.message ?? "")) {
          // A loop of redirects (fetch follows at most 20): the server's, not the network's.
          throw new RemoteError(
            "REMOTE_PROTOCOL",
            `Cannot read "${this.name}": ${(error as Error).message.split("\n")[0]}`,
          );
        }
        return { ok: false, received: 0, reason: describeFault(error, idle) };
      }
      idle.touch();
      const status = response.status;
      if (status === 408 || status === 429 || status >= 500) {
        await response.body?.cancel().catch(() => {});
        return {
          ok: false,
          received: 0,
          reason: `HTTP ${status}`,
          retryAfter: retryAfter(response.headers.get("retry-after")),
        };
      }
      if (status !== 200 && status !== 206 && status !== 416) {
        await response.body?.cancel().catch(() => {});
        throw this.#refusal(status);
      }
      if (status === 416 && !range.startsWith("bytes=-") && range !== "bytes=0-0") {
        throw this.#changed(`it answered 416 (range not satisfiable) for ${range}`);
      }
      const value = await use(response, idle);
      if (isFailure(value)) return value;
      return { ok: true, value };
    } catch (error) {
      if (
        error instanceof RemoteError || error instanceof ContainerFormatError ||
        error instanceof Deno.errors.NotCapable
      ) throw error;
      this.#throwIfStopped();
      return { ok: false, received: 0, reason: describeFault(error, idle) };
    } finally {
      idle.clear();
    }
  }

  /** Read a body into `into` from `at`: `{ ok: true }`, or a failure with what was received. */
  async #body(
    response: Response,
    into: Uint8Array,
    at: number,
    idle: IdleTimer,
  ): Promise<{ ok: true; received: number } | Failure> {
    const expected = into.length - at;
    let received = 0;
    const reader = response.body?.getReader();
    if (reader === undefined) {
      return expected === 0
        ? { ok: true, received: 0 }
        : { ok: false, received: 0, reason: "an empty body" };
    }
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        idle.touch();
        this.stats.bytesReceived += value.length;
        if (received + value.length > expected) {
          await reader.cancel().catch(() => {});
          throw new RemoteError(
            "REMOTE_PROTOCOL",
            `Cannot read "${this.name}": the server sent more than the ${expected} bytes asked for`,
            { status: response.status },
          );
        }
        into.set(value, at + received);
        received += value.length;
      }
    } catch (error) {
      if (error instanceof RemoteError) throw error;
      this.#throwIfStopped();
      // A connection closed before the Content-Length announced is a body cut short.
      const reason = `a body cut short (${received} of ${expected} bytes: ${
        describeFault(error, idle)
      })`;
      return { ok: false, received, reason };
    }
    if (received < expected) {
      return { ok: false, received, reason: `a body cut short (${received} of ${expected} bytes)` };
    }
    return { ok: true, received };
  }

  #checkVersion(size: number, etag: string | undefined, status: number): void {
    if (size !== this.size) {
      throw this.#changed(`its size is now ${size} bytes, not ${this.size}`, status);
    }
    if (this.#etag !== undefined && etag !== undefined && etag !== this.#etag) {
      throw this.#changed(`its ETag is now ${etag}, not ${this.#etag}`, status);
    }
  }

  #changed(detail: string, status?: number): RemoteError {
    const when = this.#confirmed ? "while it was read" : "since its index was cached";
    return new RemoteError(
      "REMOTE_CHANGED",
      `Cannot read "${this.name}": the object changed ${when} (${detail}); run the command again`,
      status === undefined ? {} : { status },
    );
  }

  #noRanges(response: Response, length?: number): RemoteError {
    const whole = length ?? lengthOf(response);
    return new RemoteError(
      "REMOTE_PROTOCOL",
      `Cannot read "${this.name}": the server does not answer Range requests (it answered ` +
        `${response.status} with the whole object${
          whole === undefined ? "" : `, ${whole} bytes`
        }); ctnr reads containers by ranges and does not download them whole`,
      { status: response.status },
    );
  }

  #refusal(status: number): RemoteError {
    if (status === 412) return this.#changed("it answered 412: If-Match failed", status);
    if (status === 401 || status === 403) {
      return new RemoteError(
        "REMOTE_DENIED",
        `Cannot read "${this.name}": HTTP ${status}: URL expired or not authorised ` +
          `(a presigned URL past its expiry, or credentials without read access)`,
        { status },
      );
    }
    if (status === 404 || status === 410) {
      return new RemoteError(
        "REMOTE_NOT_FOUND",
        `Cannot read "${this.name}": HTTP ${status}: no such object`,
        { status },
      );
    }
    return new RemoteError(
      "REMOTE_PROTOCOL",
      `Cannot read "${this.name}": the server answered HTTP ${status}`,
      { status },
    );
  }

  #throwIfStopped(): void {
    const signal = this.#options.signal;
    // The CLI aborts with the signal's name: the run stops as a signal stops it (exit 130).
    if (signal?.aborted) throw new InterruptedError(stoppedBy(signal));
    if (this.#abort.signal.aborted) {
      throw new ContainerFormatError(`Cannot read "${this.name}": the source was closed`);
    }
  }

  /** Wait before the next attempt, or give up when the attempts are spent. */
  async #wait(failure: Failure, failures: number): Promise<void> {
    const retries = this.#options.retries ?? 6;
    if (failures > retries) {
      throw new EnvironmentError(
        `Cannot read "${this.name}": ${failure.reason}, ${failures} times in a row; ` +
          `check the network and the server, then run the command again`,
      );
    }
    this.stats.retries++;
    const base = this.#options.backoff ?? 250;
    const cap = this.#options.maxBackoff ?? 30_000;
    // Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter").
    const backoff = Math.random() * Math.min(cap, base * 2 ** (failures - 1));
    const delay = Math.min(cap, Math.max(backoff, failure.retryAfter ?? 0));
    await sleep(delay, this.#abort.signal);
    this.#throwIfStopped();
  }
}

/** A fault worth another attempt. */
interface Failure {
  ok: false;
  /** Body bytes received before it. */
  received: number;
  /** What happened, for the message when the attempts run out. */
  reason: string;
  /** The server's `Retry-After`, in milliseconds. */
  retryAfter?: number | undefined;
}

function isFailure(value: unknown): value is Failure {
  return typeof value === "object" && value !== null && (value as Failure).ok === false;
}

/** Aborts a request when no byte came for `ms` milliseconds; reset by {@link IdleTimer.touch}. */
class IdleTimer {
  #controller = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ms: number;
  timedOut = false;
  readonly signal: AbortSignal;

  constructor(ms: number, outer: AbortSignal) {
    this.#ms = ms;
    this.signal = AbortSignal.any([this.#controller.signal, outer]);
    this.touch();
  }

  touch(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.timedOut = true;
      this.#controller.abort(new DOMException("idle timeout", "TimeoutError"));
    }, this.#ms);
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}

function describeFault(error: unknown, idle: IdleTimer | undefined): string {
  if (idle?.timedOut || (error as Error)?.name === "TimeoutError") return "no byte for too long";
  const message = (error as Error)?.message ?? String(error);
  return `a network error (${message.split("\n")[0]})`;
}

function etagOf(response: Response): string | undefined {
  const etag = response.headers.get("etag") ?? undefined;
  // A weak ETag never matches If-Match (RFC 9110 section 13.1.1: strong comparison).
  return etag === undefined || etag.startsWith("W/") ? undefined : etag;
}

function lengthOf(response: Response): number | undefined {
  const text = response.headers.get("content-length");
  if (text === null || !/^\d+$/.test(text)) return undefined;
  return Number(text);
}

/** `Content-Range: bytes a-b/size` (RFC 9110 section 14.4); `size` undefined for `*`. */
export function contentRange(
  response: Response,
): { start: number; end: number; size: number | undefined } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(
    (response.headers.get("content-range") ?? "").trim(),
  );
  if (match === null) return undefined;
  const start = Number(match[1]);
  const end = Number(match[2]);
  const size = match[3] === "*" ? undefined : Number(match[3]);
  if (end < start || (size !== undefined && end >= size)) return undefined;
  return { start, end, size };
}

/** The size a 416 names (`Content-Range: bytes *\/size`). */
function unsatisfiedSize(response: Response): number | undefined {
  const match = /^bytes \*\/(\d+)$/.exec((response.headers.get("content-range") ?? "").trim());
  return match === null ? undefined : Number(match[1]);
}

/** `Retry-After` in milliseconds: delay-seconds or an HTTP date (RFC 9110 section 10.2.3). */
export function retryAfter(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

/**
 * The reads announced by {@link HttpSource.plan}: ranges pulled as the reads advance, joined
 * into requests, `connections` of them ahead of the reader.
 */
class Planner {
  #source: HttpSource;
  #ranges: AsyncIterator<readonly [number, number]> | Iterator<readonly [number, number]>;
  #options: { connections: number; maxRange: number; maxGap: number };
  /** Requests issued and not yet passed by the reads, in order. */
  #blocks: Block[] = [];
  /** A range pulled and not yet in a request. */
  #pending: [number, number] | undefined;
  #exhausted = false;
  #stopped = false;
  /** Requests issued so far. */
  #issued = 0;
  #filling: Promise<void> | undefined;
  /** The end of a read waiting on requests beyond `connections` (see `read`); -1 for none. */
  #need = -1;

  constructor(
    source: HttpSource,
    ranges: AsyncIterable<readonly [number, number]> | Iterable<readonly [number, number]>,
    options: { connections: number; maxRange: number; maxGap: number },
  ) {
    this.#source = source;
    this.#ranges = Symbol.asyncIterator in ranges
      ? ranges[Symbol.asyncIterator]()
      : (ranges as Iterable<readonly [number, number]>)[Symbol.iterator]();
    this.#options = options;
    this.#fill();
  }

  /** The bytes of `[position, position + length)` when the plan covers them, else `undefined`. */
  async read(position: number, length: number): Promise<Uint8Array | undefined> {
    const pieces = await this.#locate(position, position + length);
    if (pieces === undefined) return undefined;
    return await this.#join(pieces, position, length);
  }

  /**
   * The bytes of the one request that holds `[position, position + length)` whole, with its
   * start; the bytes alone (as {@link Planner.read}) when they span requests; `undefined`
   * when the plan does not cover them.
   */
  async span(
    position: number,
    length: number,
  ): Promise<{ start: number; bytes: Uint8Array } | undefined> {
    const pieces = await this.#locate(position, position + length);
    if (pieces === undefined) return undefined;
    if (pieces.length === 1) return { start: pieces[0]!.start, bytes: await pieces[0]!.bytes };
    return { start: position, bytes: await this.#join(pieces, position, length) };
  }

  /** The requests that hold `[position, end)`, issued as needed; `undefined` when not planned. */
  async #locate(position: number, end: number): Promise<Block[] | undefined> {
    let pieces = this.#covering(position, end);
    if (pieces === undefined) {
      // Past the requests issued: pass the ones behind, and issue those up to the read (a read
      // the plan does not hold stops this once `connections` requests are ahead of it).
      this.#passBefore(position);
      // A read that starts in an issued request and goes past the last one (a payload longer
      // than a request, or an index read across two) may issue past `connections`: else with
      // one connection it is never covered and fetched a second time on its own.
      while (!this.#stopped && this.#lastEnd() < end) {
        const first = this.#blocks[0];
        if (first !== undefined && first.start <= position && position < first.end) {
          this.#need = end;
        }
        const issued = this.#issued;
        await this.#fill();
        if (this.#issued === issued) break;
      }
      this.#need = -1;
      pieces = this.#covering(position, end);
      if (pieces === undefined) return undefined;
    }
    this.#passBefore(position);
    this.#fill();
    return pieces;
  }

  /** `[position, position + length)` from `pieces`, contiguous requests that hold it. */
  async #join(pieces: Block[], position: number, length: number): Promise<Uint8Array> {
    const end = position + length;
    if (pieces.length === 1) {
      const block = pieces[0]!;
      const bytes = await block.bytes;
      return bytes.subarray(position - block.start, end - block.start);
    }
    const out = new Uint8Array(length);
    for (const block of pieces) {
      const bytes = await block.bytes;
      const from = Math.max(position, block.start);
      const to = Math.min(end, block.end);
      out.set(bytes.subarray(from - block.start, to - block.start), from - position);
    }
    return out;
  }

  stop(): void {
    this.#stopped = true;
    this.#blocks = [];
    const ranges = this.#ranges as { return?: () => unknown };
    try {
      const done = ranges.return?.();
      if (done instanceof Promise) done.catch(() => {});
    } catch { /* nothing to stop */ }
  }

  #lastEnd(): number {
    return this.#blocks.at(-1)?.end ?? -1;
  }

  /** The contiguous requests that hold `[start, end)`, or `undefined`. */
  #covering(start: number, end: number): Block[] | undefined {
    const blocks = this.#blocks;
    for (let i = 0; i < blocks.length; i++) {
      const first = blocks[i]!;
      if (first.start > start) return undefined;
      if (first.end <= start) continue;
      const out = [first];
      let reached = first.end;
      for (let j = i + 1; reached < end && j < blocks.length; j++) {
        const next = blocks[j]!;
        if (next.start !== reached) return undefined;
        out.push(next);
        reached = next.end;
      }
      return reached >= end ? out : undefined;
    }
    return undefined;
  }

  /** Free the requests that end at or before `position`: the reads have passed them. */
  #passBefore(position: number): void {
    const blocks = this.#blocks;
    let n = 0;
    while (n < blocks.length && blocks[n]!.end <= position) n++;
    if (n > 0) blocks.splice(0, n);
  }

  /** Issue requests until `connections` are ahead or the plan ends. */
  #fill(): Promise<void> {
    if (this.#filling) return this.#filling;
    this.#filling = this.#fillNow().finally(() => this.#filling = undefined);
    this.#filling.catch(() => {});
    return this.#filling;
  }

  async #fillNow(): Promise<void> {
    const { connections, maxRange, maxGap } = this.#options;
    while (
      !this.#stopped && (this.#blocks.length < connections || this.#lastEnd() < this.#need)
    ) {
      let start: number | undefined;
      let end = 0;
      for (;;) {
        const fresh = this.#pending === undefined;
        const next = this.#pending ?? await this.#pull();
        if (this.#stopped) return;
        if (next === undefined) break;
        const [from, to] = next;
        // A read wholly in the tail read at open costs no request (a small container's
        // payloads); the rest of a long read split into requests is fetched (its reads span it).
        if (to <= from || (fresh && this.#source.holds(from, to - from))) {
          this.#pending = undefined;
          continue;
        }
        if (start === undefined) {
          start = from;
          end = Math.min(to, from + maxRange);
          this.#pending = end < to ? [end, to] : undefined;
          if (end < to) break; // a long range: one full request now
          continue;
        }
        if (from < end || from - end > maxGap || to - start > maxRange) {
          this.#pending = [from, to];
          break;
        }
        end = to;
        this.#pending = undefined;
      }
      if (start === undefined) return;
      const bytes = this.#source.fetchRange(start, end);
      bytes.catch(() => {}); // surfaced by the read that needs it
      this.#blocks.push({ start, end, bytes });
      this.#issued++;
    }
  }

  async #pull(): Promise<[number, number] | undefined> {
    if (this.#exhausted) return undefined;
    const next = await this.#ranges.next();
    if (next.done) {
      this.#exhausted = true;
      return undefined;
    }
    return [next.value[0], Math.min(next.value[1], this.#source.size)];
  }
}
