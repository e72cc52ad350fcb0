/**
 * S3 addressing and request signing for reading a container from an S3 bucket: `s3://bucket/key`
 * to the object's https URL, the configuration from the environment as the AWS CLI reads it, and
 * requests signed with AWS Signature Version 4.
 *
 * Signing is the npm package `aws4fetch` (AWS Signature V4 on Web Crypto, no dependency),
 * imported when the first S3 request is made, so that a command that never touches S3 loads no
 * npm package (README "Runtime dependencies").
 *
 * Sources: AWS "Signature Version 4 for API requests" and "Authenticating requests: Using query
 * parameters" (presigned URLs, `X-Amz-Expires` of 1 to 604800 seconds); AWS "Virtual hosting of
 * buckets" (virtual-hosted and path-style URLs); the AWS CLI's "Environment variables to configure
 * the AWS CLI" (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
 * `AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, `AWS_PROFILE`,
 * `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`) and "Configuration and credential file
 * settings" (`~/.aws/credentials`, `~/.aws/config`).
 *
 * @module
 */

import { UsageError } from "../errors.ts";

/**
 * The module that re-exports the npm package that signs requests (lib/remote/_aws4fetch.ts),
 * by a computed URL so that Deno does not see it: a literal `import("npm:...")` is installed
 * before the program starts, also by runs that never reach it. `deno compile` includes it
 * (scripts/compile.ts).
 */
const AWS4FETCH = new URL("./_aws4fetch.ts", import.meta.url).href;

/** The region used when none is configured, as the AWS CLI's S3 commands do. */
export const DEFAULT_REGION = "us-east-1";

/** The longest validity of a presigned URL AWS accepts, in seconds (seven days). */
export const MAX_PRESIGN_SECONDS = 604_800;

/** A bucket and an object key, as {@link parseS3Url} reads them from `s3://bucket/key`. */
export interface S3Location {
  /** The bucket's name. */
  bucket: string;
  /** The object's key, as written after the bucket (no percent-decoding, as the AWS CLI). */
  key: string;
}

/** Where and as whom S3 requests go; {@link s3ConfigFromEnv} reads it from the environment. */
export interface S3Config {
  /** A custom endpoint (`http://127.0.0.1:9000`, a MinIO or Swift): requests are path-style. */
  endpoint?: string;
  /** The bucket's region, signed into every request. @default {"us-east-1"} */
  region?: string;
  /** The access key ID. */
  accessKeyId?: string;
  /** The secret access key. */
  secretAccessKey?: string;
  /** The session token of temporary credentials (`X-Amz-Security-Token`). */
  sessionToken?: string;
  /**
   * Path-style URLs (`endpoint/bucket/key`) instead of virtual-hosted ones
   * (`bucket.endpoint/key`). @default {true with a custom endpoint, false for AWS}
   */
  pathStyle?: boolean;
}

/** An S3 object's URL and a signer for requests to it, as {@link s3Request} returns them. */
export interface S3Request {
  /** The object's URL (the key percent-encoded). */
  url: string;
  /**
   * Sign a request to {@link url} (any method, headers such as `Range` and `If-Match` already
   * set) with AWS Signature V4 in its headers; returns a new request, the signal kept.
   */
  sign(request: Request): Promise<Request>;
}

/**
 * Read `s3://bucket/key` into its bucket and key. The key is everything after the first `/`
 * after the bucket, as written (`s3://b/a b+c.ctnr` is the key `a b+c.ctnr`).
 *
 * @param url an `s3://` URL
 * @returns the bucket and the key
 * @throws {UsageError} when the URL is not `s3://`, or has no bucket or no key
 *
 * @example Read an S3 URL
 * ```ts
 * import { parseS3Url } from "./s3.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseS3Url("s3://data/2024/a b.ctnr"), { bucket: "data", key: "2024/a b.ctnr" });
 * ```
 */
export function parseS3Url(url: string): S3Location {
  if (!/^s3:\/\//i.test(url)) {
    throw new UsageError(`Cannot read "${url}" as an S3 URL: it does not start with s3://`);
  }
  const rest = url.slice("s3://".length);
  const slash = rest.indexOf("/");
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? "" : rest.slice(slash + 1);
  if (bucket === "") {
    throw new UsageError(`Cannot read "${url}" as an S3 URL: no bucket (s3://bucket/key)`);
  }
  if (!/^[A-Za-z0-9._-]+$/.test(bucket)) {
    throw new UsageError(
      `Cannot read "${url}" as an S3 URL: "${bucket}" is not a bucket name (letters, digits, ".", "-", "_")`,
    );
  }
  if (key === "") {
    throw new UsageError(`Cannot read "${url}" as an S3 URL: no object key (s3://bucket/key)`);
  }
  return { bucket, key };
}

/**
 * Read the S3 configuration from the environment as the AWS CLI does: `AWS_ACCESS_KEY_ID`,
 * `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; the region from `AWS_REGION`, then
 * `AWS_DEFAULT_REGION`, then the profile, else `us-east-1`; the endpoint from
 * `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`, then the profile's `endpoint_url`. The profile
 * is `AWS_PROFILE` (else `default`), read from the shared credentials file
 * (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`: `[name]` sections) and the config
 * file (`AWS_CONFIG_FILE`, else `~/.aws/config`: `[profile name]`, `[default]`); keys in the
 * environment win over the profile's, the credentials file over the config file. Variables and
 * files that cannot be read (no `--allow-env`, no `--allow-read`) count as unset.
 *
 * @param get reads one variable, `undefined` when unset
 * @returns the configuration; fields nothing set are left out
 *
 * @example Configuration from given variables
 * ```ts
 * import { s3ConfigFromEnv } from "./s3.ts";
 * import assert from "node:assert/strict";
 *
 * const env: Record<string, string> = { AWS_DEFAULT_REGION: "eu-west-3", HOME: "/nonexistent" };
 * assert.equal(s3ConfigFromEnv((name) => env[name]).region, "eu-west-3");
 * ```
 */
export function s3ConfigFromEnv(
  get: (name: string) => string | undefined = (name) => Deno.env.get(name),
): S3Config {
  const env = (name: string): string | undefined => {
    try {
      const value = get(name);
      return value === "" ? undefined : value;
    } catch {
      return undefined; // no --allow-env: unset
    }
  };
  const profileName = env("AWS_PROFILE") ?? "default";
  const home = env("HOME") ?? env("USERPROFILE");
  const credentialsFile = env("AWS_SHARED_CREDENTIALS_FILE") ??
    (home === undefined ? undefined : `${home}/.aws/credentials`);
  const configFile = env("AWS_CONFIG_FILE") ??
    (home === undefined ? undefined : `${home}/.aws/config`);
  const fromCredentials = readIniSection(credentialsFile, profileName);
  const fromConfig = readIniSection(
    configFile,
    profileName === "default" ? "default" : `profile ${profileName}`,
  );
  const profile = (key: string) => fromCredentials[key] ?? fromConfig[key];

  const config: S3Config = {};
  const set = (field: keyof S3Config, value: string | undefined) => {
    if (value !== undefined && field !== "pathStyle") config[field] = value;
  };
  const envKeys = env("AWS_ACCESS_KEY_ID") !== undefined;
  set("accessKeyId", envKeys ? env("AWS_ACCESS_KEY_ID") : profile("aws_access_key_id"));
  set(
    "secretAccessKey",
    envKeys ? env("AWS_SECRET_ACCESS_KEY") : profile("aws_secret_access_key"),
  );
  set("sessionToken", envKeys ? env("AWS_SESSION_TOKEN") : profile("aws_session_token"));
  set(
    "region",
    env("AWS_REGION") ?? env("AWS_DEFAULT_REGION") ?? profile("region") ?? DEFAULT_REGION,
  );
  set("endpoint", env("AWS_ENDPOINT_URL_S3") ?? env("AWS_ENDPOINT_URL") ?? profile("endpoint_url"));
  return config;
}

/**
 * The https URL of the object at `s3://bucket/key` and a signer for requests to it.
 * Virtual-hosted for AWS (`https://bucket.s3.region.amazonaws.com/key`; path-style
 * `https://s3.region.amazonaws.com/bucket/key` for a bucket with a dot, whose name the
 * certificate does not cover); path-style `endpoint/bucket/key` for a custom endpoint or with
 * `pathStyle`. Each `/`-separated part of the key is percent-encoded as RFC 3986 unreserved
 * characters (a space is `%20`, `+` is `%2B`, UTF-8 bytes for Unicode), as SigV4 signs it.
 *
 * @param url an `s3://bucket/key` URL
 * @param config endpoint, region and credentials ({@link s3ConfigFromEnv})
 * @returns the object's URL and `sign(request)`, which adds the SigV4 headers
 * @throws {UsageError} for a bad S3 URL or endpoint, or when the access key ID or secret
 *   access key is missing (the message names the variables that set them)
 *
 * @example The URL of an object on AWS
 * ```ts
 * import { s3Request } from "./s3.ts";
 * import assert from "node:assert/strict";
 *
 * const config = { region: "eu-west-3", accessKeyId: "AKID", secretAccessKey: "secret" };
 * const { url } = await s3Request("s3://data/a b.ctnr", config);
 * assert.equal(url, "https://data.s3.eu-west-3.amazonaws.com/a%20b.ctnr");
 * ```
 */
export async function s3Request(url: string, config: S3Config): Promise<S3Request> {
  const objectUrl = s3ObjectUrl(parseS3Url(url), config);
  const client = await awsClient(url, config);
  return {
    url: objectUrl,
    sign: (request) => client.sign(request, { signal: request.signal }),
  };
}

/**
 * A presigned GET URL of the object at `s3://bucket/key`: anyone holding it can read the object
 * with a plain `fetch` (a `Range` header too) until it expires.
 *
 * @param url an `s3://bucket/key` URL
 * @param config endpoint, region and credentials ({@link s3ConfigFromEnv})
 * @param expiresSeconds how long the URL is valid, in seconds, 1 to 604800 (seven days)
 * @returns the URL, signed in its query (`X-Amz-Signature`, ...)
 * @throws {UsageError} as {@link s3Request} does
 * @throws {RangeError} when `expiresSeconds` is not a whole number from 1 to 604800
 *
 * @example Presign an object for an hour
 * ```ts
 * import { presignS3Url } from "./s3.ts";
 * import assert from "node:assert/strict";
 *
 * const config = { region: "eu-west-3", accessKeyId: "AKID", secretAccessKey: "secret" };
 * const url = new URL(await presignS3Url("s3://data/a.ctnr", config, 3600));
 * assert.equal(url.searchParams.get("X-Amz-Expires"), "3600");
 * ```
 */
export async function presignS3Url(
  url: string,
  config: S3Config,
  expiresSeconds: number,
): Promise<string> {
  if (
    !Number.isInteger(expiresSeconds) || expiresSeconds < 1 ||
    expiresSeconds > MAX_PRESIGN_SECONDS
  ) {
    throw new RangeError(
      `Cannot presign "${url}": expiry ${expiresSeconds} is not a whole number of seconds from 1 to ${MAX_PRESIGN_SECONDS}`,
    );
  }
  const objectUrl = new URL(s3ObjectUrl(parseS3Url(url), config));
  objectUrl.searchParams.set("X-Amz-Expires", String(expiresSeconds));
  const client = await awsClient(url, config);
  const signed = await client.sign(objectUrl.href, { method: "GET", aws: { signQuery: true } });
  return signed.url;
}

/** The object's URL for a bucket and key under `config`. */
function s3ObjectUrl({ bucket, key }: S3Location, config: S3Config): string {
  const path = key.split("/").map(encodeKeyPart).join("/");
  const region = config.region ?? DEFAULT_REGION;
  if (config.endpoint === undefined) {
    if (config.pathStyle === true || bucket.includes(".")) {
      return `https://s3.${region}.amazonaws.com/${bucket}/${path}`;
    }
    return `https://${bucket}.s3.${region}.amazonaws.com/${path}`;
  }
  let endpoint: URL;
  try {
    endpoint = new URL(config.endpoint);
  } catch {
    throw new UsageError(`Cannot use the S3 endpoint "${config.endpoint}": it is not a URL`);
  }
  if (endpoint.protocol !== "https:" && endpoint.protocol !== "http:") {
    throw new UsageError(`Cannot use the S3 endpoint "${config.endpoint}": it is not http(s)`);
  }
  const base = endpoint.pathname.replace(/\/+$/, "");
  if (config.pathStyle === false) {
    return `${endpoint.protocol}//${bucket}.${endpoint.host}${base}/${path}`;
  }
  return `${endpoint.protocol}//${endpoint.host}${base}/${bucket}/${path}`;
}

/** One part of a key, percent-encoded but for RFC 3986's unreserved characters. */
function encodeKeyPart(part: string): string {
  return encodeURIComponent(part).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The part of aws4fetch's `AwsClient` used here. */
interface AwsClientLike {
  sign(
    input: Request | string,
    init?: RequestInit & { aws?: { signQuery?: boolean } },
  ): Promise<Request>;
}

/** An aws4fetch client for S3 in `config`'s region, the package loaded on first use. */
async function awsClient(url: string, config: S3Config): Promise<AwsClientLike> {
  if (config.accessKeyId === undefined || config.secretAccessKey === undefined) {
    throw new UsageError(
      `Cannot read "${url}": no S3 credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials)`,
    );
  }
  const { AwsClient } = await import(AWS4FETCH);
  return new AwsClient({
    accessKeyId: config.accessKeyId,
    secretAccessKey: config.secretAccessKey,
    ...(config.sessionToken === undefined ? {} : { sessionToken: config.sessionToken }),
    service: "s3",
    region: config.region ?? DEFAULT_REGION,
  }) as AwsClientLike;
}

/** The keys of one `[section]` of an INI file (the AWS shared files), `{}` when unreadable. */
function readIniSection(path: string | undefined, section: string): Record<string, string> {
  if (path === undefined) return {};
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return {}; // missing, or no --allow-read: nothing configured there
  }
  const found: Record<string, string> = {};
  let inSection = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[\s*(.+?)\s*\]$/.exec(line);
    if (header) {
      inSection = header[1]!.replace(/\s+/g, " ") === section;
      continue;
    }
    const eq = line.indexOf("=");
    if (inSection && eq > 0 && !/^\s/.test(raw)) {
      found[line.slice(0, eq).trim().toLowerCase()] = line.slice(eq + 1).trim();
    }
  }
  return found;
}
