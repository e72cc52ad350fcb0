/**
 * Placeholder: replaced by the s3 helper's module (parseS3Url, s3ConfigFromEnv, s3Request).
 *
 * @module
 */
import { UsageError } from "../errors.ts";

/** Where and how to reach S3. */
export interface S3Config {
  /** Endpoint URL. */
  endpoint?: string;
  /** Region. */
  region?: string;
}

/**
 * The https URL and signer of an `s3://` URL.
 * @param url the s3 URL
 * @param _config where and how
 * @returns the URL and signer
 */
export function s3Request(
  url: string,
  _config: S3Config,
): Promise<{ url: string; sign(request: Request): Promise<Request> }> {
  return Promise.reject(new UsageError(`Cannot read "${url}": s3:// is not supported yet`));
}

/**
 * The config from the environment.
 * @returns the config
 */
export function s3ConfigFromEnv(): S3Config {
  return {};
}
