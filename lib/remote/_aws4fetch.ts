/**
 * The npm package that signs S3 requests (AWS Signature V4), re-exported: lib/remote/s3.ts
 * loads this module by a computed URL on first use, so a run that reads no `s3://` URL installs
 * no npm package (a literal `import("npm:...")` is installed before the program starts), and
 * `deno compile` takes it in through `--include` (scripts/compile.ts INCLUDED_MODULES), as it
 * takes the worker modules.
 *
 * @module
 */

export { AwsClient } from "npm:aws4fetch@1.0.20";
