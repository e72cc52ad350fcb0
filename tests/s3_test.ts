import assert from "node:assert/strict";
import { UsageError } from "../lib/errors.ts";
import {
  DEFAULT_REGION,
  parseS3Url,
  presignS3Url,
  type S3Config,
  s3ConfigFromEnv,
  s3Request,
} from "../lib/remote/s3.ts";
import { createContainer } from "../mod.ts";
import { DENO_CHILD_TIMEOUT_MS, runCommand, withTempDir, writeTree } from "./_helpers.ts";
import { startSwift, swiftAvailable } from "./_swift.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const KEYS = { accessKeyId: "AKID", secretAccessKey: "secret" };

Deno.test("parseS3Url reads the bucket and the key as written", () => {
  const cases: [string, string, string][] = [
    ["s3://data/a.ctnr", "data", "a.ctnr"],
    ["s3://data/2024/a b+c ü.ctnr", "data", "2024/a b+c ü.ctnr"],
    ["s3://my.bucket/x%20y", "my.bucket", "x%20y"], // no percent-decoding, as the AWS CLI
    ["S3://data/dir/", "data", "dir/"],
  ];
  for (const [url, bucket, key] of cases) assert.deepEqual(parseS3Url(url), { bucket, key }, url);
});

Deno.test("parseS3Url refuses a URL without a bucket or key with a usage error naming it", () => {
  const cases: [string, RegExp][] = [
    ["https://data/a.ctnr", /does not start with s3:\/\//],
    ["s3://", /no bucket/],
    ["s3:///a.ctnr", /no bucket/],
    ["s3://data", /no object key/],
    ["s3://data/", /no object key/],
    ["s3://da ta/a.ctnr", /is not a bucket name/],
  ];
  for (const [url, detail] of cases) {
    assert.throws(() => parseS3Url(url), (error: unknown) => {
      assert.ok(error instanceof UsageError, url);
      assert.equal(error.exitCode, 2);
      assert.ok(error.message.includes(`"${url}"`), error.message);
      assert.match(error.message, detail);
      return true;
    });
  }
});

Deno.test("s3ConfigFromEnv reads the AWS CLI's variables in the AWS CLI's order", () => {
  const from = (env: Record<string, string>) =>
    s3ConfigFromEnv((name) => ({ HOME: "/nonexistent", ...env })[name]);
  assert.deepEqual(from({}), { region: DEFAULT_REGION });
  assert.deepEqual(
    from({
      AWS_ACCESS_KEY_ID: "AKID",
      AWS_SECRET_ACCESS_KEY: "secret",
      AWS_SESSION_TOKEN: "token",
      AWS_REGION: "eu-west-3",
      AWS_DEFAULT_REGION: "us-west-2",
      AWS_ENDPOINT_URL_S3: "http://127.0.0.1:9000",
      AWS_ENDPOINT_URL: "http://127.0.0.1:9999",
    }),
    {
      accessKeyId: "AKID",
      secretAccessKey: "secret",
      sessionToken: "token",
      region: "eu-west-3",
      endpoint: "http://127.0.0.1:9000",
    },
  );
  assert.equal(from({ AWS_DEFAULT_REGION: "us-west-2" }).region, "us-west-2");
  assert.equal(
    from({ AWS_ENDPOINT_URL: "http://127.0.0.1:9999" }).endpoint,
    "http://127.0.0.1:9999",
  );
  // An empty variable is unset, as in the AWS CLI.
  assert.equal(from({ AWS_REGION: "", AWS_DEFAULT_REGION: "us-west-2" }).region, "us-west-2");
});

Deno.test("s3ConfigFromEnv treats variables it may not read as unset", () => {
  const denied = () => {
    throw new Deno.errors.NotCapable('Requires env access to "AWS_REGION"');
  };
  assert.deepEqual(s3ConfigFromEnv(denied), { region: DEFAULT_REGION });
});

Deno.test("s3ConfigFromEnv without --allow-env does not crash", async () => {
  const script = `import { s3ConfigFromEnv } from ${
    JSON.stringify(new URL("../lib/remote/s3.ts", import.meta.url).href)
  };\nconsole.log(JSON.stringify(s3ConfigFromEnv()));`;
  const ran = await runCommand(
    Deno.execPath(),
    ["run", "--no-prompt", "--no-config", "--allow-read", "-"],
    { timeoutMs: DENO_CHILD_TIMEOUT_MS, stdin: script, env: { AWS_REGION: "eu-west-3" } },
  );
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(JSON.parse(ran.stdout), { region: DEFAULT_REGION });
});

Deno.test("s3ConfigFromEnv reads AWS_PROFILE from the shared credentials and config files", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/credentials`,
      "[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = defaultsecret\n\n" +
        "[dev]\naws_access_key_id = DEVKEY\naws_secret_access_key = devsecret\n" +
        "aws_session_token = devtoken\n",
    );
    await Deno.writeTextFile(
      `${dir}/config`,
      "[default]\nregion = us-west-1\n\n[profile dev]\nregion = eu-north-1\n" +
        "endpoint_url = http://127.0.0.1:9000\naws_access_key_id = CONFIGKEY\n",
    );
    const env = (extra: Record<string, string>) => (name: string) =>
      ({
        AWS_SHARED_CREDENTIALS_FILE: `${dir}/credentials`,
        AWS_CONFIG_FILE: `${dir}/config`,
        ...extra,
      })[name];
    assert.deepEqual(s3ConfigFromEnv(env({ AWS_PROFILE: "dev" })), {
      accessKeyId: "DEVKEY", // the credentials file wins over the config file
      secretAccessKey: "devsecret",
      sessionToken: "devtoken",
      region: "eu-north-1",
      endpoint: "http://127.0.0.1:9000",
    });
    assert.deepEqual(s3ConfigFromEnv(env({})), {
      accessKeyId: "DEFAULTKEY",
      secretAccessKey: "defaultsecret",
      region: "us-west-1",
    });
    // Keys and region in the environment win over the profile's.
    assert.deepEqual(
      s3ConfigFromEnv(
        env({
          AWS_PROFILE: "dev",
          AWS_ACCESS_KEY_ID: "ENVKEY",
          AWS_SECRET_ACCESS_KEY: "envsecret",
          AWS_REGION: "ap-south-1",
        }),
      ),
      {
        accessKeyId: "ENVKEY",
        secretAccessKey: "envsecret",
        region: "ap-south-1",
        endpoint: "http://127.0.0.1:9000",
      },
    );
    // ~/.aws under HOME when the file variables are unset.
    await Deno.mkdir(`${dir}/.aws`);
    await Deno.copyFile(`${dir}/credentials`, `${dir}/.aws/credentials`);
    assert.equal(
      s3ConfigFromEnv((name) => ({ HOME: dir, AWS_PROFILE: "dev" })[name]).accessKeyId,
      "DEVKEY",
    );
  });
});

Deno.test("s3Request addresses AWS virtual-hosted and a custom endpoint path-style", async () => {
  const cases: [string, S3Config, string][] = [
    ["s3://data/a.ctnr", { region: "eu-west-3" }, "https://data.s3.eu-west-3.amazonaws.com/a.ctnr"],
    ["s3://data/a.ctnr", {}, "https://data.s3.us-east-1.amazonaws.com/a.ctnr"],
    ["s3://my.data/a.ctnr", {}, "https://s3.us-east-1.amazonaws.com/my.data/a.ctnr"],
    ["s3://data/a.ctnr", { pathStyle: true }, "https://s3.us-east-1.amazonaws.com/data/a.ctnr"],
    [
      "s3://data/d/a.ctnr",
      { endpoint: "http://127.0.0.1:9000" },
      "http://127.0.0.1:9000/data/d/a.ctnr",
    ],
    [
      "s3://data/a.ctnr",
      { endpoint: "https://s3.example/base/" },
      "https://s3.example/base/data/a.ctnr",
    ],
    [
      "s3://data/a.ctnr",
      { endpoint: "https://s3.example", pathStyle: false },
      "https://data.s3.example/a.ctnr",
    ],
    // Keys: a space is %20, "+" is %2B (a server reads a bare "+" as a space), UTF-8 for Unicode.
    [
      "s3://data/a b+c ü (1)!*'.ctnr",
      {},
      "https://data.s3.us-east-1.amazonaws.com/a%20b%2Bc%20%C3%BC%20%281%29%21%2A%27.ctnr",
    ],
    ["s3://data/dir//a~-_.ctnr", {}, "https://data.s3.us-east-1.amazonaws.com/dir//a~-_.ctnr"],
  ];
  for (const [url, config, expected] of cases) {
    assert.equal((await s3Request(url, { ...KEYS, ...config })).url, expected, url);
  }
});

Deno.test("s3Request without credentials is a usage error naming the variables to set", async () => {
  await assert.rejects(s3Request("s3://data/a.ctnr", { region: "eu-west-3" }), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.equal(error.exitCode, 2);
    assert.match(error.message, /"s3:\/\/data\/a\.ctnr": no S3 credentials/);
    assert.match(error.message, /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    return true;
  });
  await assert.rejects(
    presignS3Url("s3://data/a.ctnr", { accessKeyId: "AKID" }, 60),
    UsageError,
  );
  await assert.rejects(
    s3Request("s3://data/a.ctnr", { ...KEYS, endpoint: "ftp://127.0.0.1" }),
    /Cannot use the S3 endpoint "ftp:\/\/127\.0\.0\.1": it is not http\(s\)/,
  );
});

Deno.test("s3Request signs with SigV4 for the region, keeping Range, If-Match and the signal", async () => {
  const { url, sign } = await s3Request("s3://data/a.ctnr", {
    ...KEYS,
    region: "eu-west-3",
    sessionToken: "token",
  });
  const controller = new AbortController();
  const signed = await sign(
    new Request(url, {
      headers: { Range: "bytes=-16", "If-Match": '"abc"' },
      signal: controller.signal,
    }),
  );
  assert.equal(signed.url, url);
  assert.equal(signed.headers.get("range"), "bytes=-16");
  assert.equal(signed.headers.get("if-match"), '"abc"');
  assert.equal(signed.headers.get("x-amz-security-token"), "token");
  assert.equal(signed.headers.get("x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
  assert.match(
    signed.headers.get("authorization") ?? "",
    /^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/eu-west-3\/s3\/aws4_request, SignedHeaders=host;if-match;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$/,
  );
  controller.abort();
  assert.equal(signed.signal.aborted, true);
});

Deno.test("presignS3Url refuses an expiry outside 1 to 604800 seconds", async () => {
  for (const seconds of [0, -1, 1.5, 604_801, NaN]) {
    await assert.rejects(presignS3Url("s3://data/a.ctnr", KEYS, seconds), RangeError);
  }
  const url = new URL(await presignS3Url("s3://data/a.ctnr", KEYS, 604_800));
  assert.equal(url.searchParams.get("X-Amz-Expires"), "604800");
  assert.equal(url.searchParams.get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
  assert.match(url.searchParams.get("X-Amz-Signature") ?? "", /^[0-9a-f]{64}$/);
});

Deno.test({
  name: "s3Request and presignS3Url against a real S3 API (OpenStack Swift's s3api)",
  ignore: !swiftAvailable(),
  async fn(t) {
    const swift = await startSwift();
    try {
      const config: S3Config = {
        endpoint: swift.endpoint,
        region: swift.region,
        accessKeyId: swift.accessKeyId,
        secretAccessKey: swift.secretAccessKey,
      };
      await swift.createBucket("ctnr-tests");
      const bytes = new Uint8Array(1000).map((_, i) => (i * 7) % 251);
      const key = "dir/a b+c ü (1).ctnr";
      const etag = await swift.putObject("ctnr-tests", key, bytes);
      const object = `s3://ctnr-tests/${key}`;
      const { url, sign } = await s3Request(object, config);
      const get = async (headers: Record<string, string>, method = "GET") => {
        const response = await fetch(await sign(new Request(url, { method, headers })));
        return { response, body: new Uint8Array(await response.arrayBuffer()) };
      };

      await t.step(
        "a signed GET of a key with a space, + and Unicode returns the object",
        async () => {
          const { response, body } = await get({});
          assert.equal(response.status, 200);
          assert.deepEqual(body, bytes);
          assert.equal(response.headers.get("etag"), etag);
        },
      );

      await t.step("a suffix range returns 206 and the last bytes", async () => {
        const { response, body } = await get({ Range: "bytes=-16" });
        assert.equal(response.status, 206);
        assert.equal(response.headers.get("content-range"), "bytes 984-999/1000");
        assert.deepEqual(body, bytes.slice(-16));
        // Unlike AWS, Swift's s3api sends no Accept-Ranges (a client must not wait for it).
        assert.equal(response.headers.get("accept-ranges"), null);
        // A suffix longer than the object is the whole object, as on AWS (206, not 416).
        const longer = await get({ Range: "bytes=-1048576" });
        assert.equal(longer.response.status, 206);
        assert.equal(longer.response.headers.get("content-range"), "bytes 0-999/1000");
        assert.deepEqual(longer.body, bytes);
        // Two ranges: a multipart/byteranges 206 (AWS serves no more than one range a GET).
        const two = await get({ Range: "bytes=0-1,5-6" });
        assert.equal(two.response.status, 206);
        assert.match(two.response.headers.get("content-type") ?? "", /^multipart\/byteranges/);
        // A range that starts past the end is 416 InvalidRange, as on AWS.
        const past = await get({ Range: "bytes=1000-" });
        assert.equal(past.response.status, 416);
        assert.match(new TextDecoder().decode(past.body), /<Code>InvalidRange<\/Code>/);
      });

      await t.step("If-Match with the ETag passes, with another ETag is 412", async () => {
        const right = await get({ Range: "bytes=0-9", "If-Match": etag });
        assert.equal(right.response.status, 206);
        assert.deepEqual(right.body, bytes.slice(0, 10));
        const wrong = await get({ Range: "bytes=0-9", "If-Match": `"${"0".repeat(32)}"` });
        assert.equal(wrong.response.status, 412);
        assert.match(new TextDecoder().decode(wrong.body), /<Code>PreconditionFailed<\/Code>/);
      });

      await t.step(
        "HEAD gives the size and ETag; with a Range, 206 and Content-Range",
        async () => {
          const head = await get({}, "HEAD");
          assert.equal(head.response.status, 200);
          assert.equal(head.response.headers.get("content-length"), "1000");
          assert.equal(head.response.headers.get("etag"), etag);
          const ranged = await get({ Range: "bytes=-16" }, "HEAD");
          assert.equal(ranged.response.status, 206);
          assert.equal(ranged.response.headers.get("content-range"), "bytes 984-999/1000");
        },
      );

      await t.step(
        "a wrong secret is 403 SignatureDoesNotMatch; a missing key is 404",
        async () => {
          const wrong = await s3Request(object, { ...config, secretAccessKey: "not-testing" });
          const response = await fetch(await wrong.sign(new Request(url)));
          assert.equal(response.status, 403);
          assert.match(await response.text(), /<Code>SignatureDoesNotMatch<\/Code>/);
          const missing = await s3Request("s3://ctnr-tests/dir/none.ctnr", config);
          const absent = await fetch(await missing.sign(new Request(missing.url)));
          assert.equal(absent.status, 404);
          assert.match(await absent.text(), /<Code>NoSuchKey<\/Code>/);
        },
      );

      await t.step(
        "a presigned URL works with a plain fetch, and not once altered or expired",
        async () => {
          const presigned = await presignS3Url(object, config, 60);
          const plain = await fetch(presigned, { headers: { Range: "bytes=-16" } });
          assert.equal(plain.status, 206);
          assert.deepEqual(new Uint8Array(await plain.arrayBuffer()), bytes.slice(-16));
          const altered = await fetch(presigned.replace("X-Amz-Expires=60", "X-Amz-Expires=61"));
          assert.equal(altered.status, 403);
          assert.match(await altered.text(), /<Code>SignatureDoesNotMatch<\/Code>/);
          const short = await presignS3Url(object, config, 1);
          // s3api compares whole seconds: 1 s of validity is over after at most 2 s.
          await new Promise((resolve) => setTimeout(resolve, 2100));
          const expired = await fetch(short);
          assert.equal(expired.status, 403);
          assert.match(await expired.text(), /<Message>Request has expired<\/Message>/);
        },
      );

      await t.step(
        "ctnr list and cat read a container at an s3:// URL, configured by AWS_*",
        async () => {
          await withTempDir(async (dir) => {
            await writeTree(`${dir}/src`, { "docs/a b.txt": "hello from s3", "c.bin": bytes });
            await createContainer(`${dir}/src`, `${dir}/c.ctnr`, { finalize: true });
            await swift.putObject(
              "ctnr-tests",
              "sets/c 1.ctnr",
              await Deno.readFile(`${dir}/c.ctnr`),
            );
            const env = {
              AWS_ACCESS_KEY_ID: swift.accessKeyId,
              AWS_SECRET_ACCESS_KEY: swift.secretAccessKey,
              AWS_ENDPOINT_URL_S3: swift.endpoint,
              AWS_REGION: swift.region,
              AWS_CONFIG_FILE: `${dir}/none`,
              AWS_SHARED_CREDENTIALS_FILE: `${dir}/none`,
              CTNR_CACHE_DIR: `${dir}/cache`,
            };
            const ctnr = (extra: Record<string, string>, ...args: string[]) =>
              runCommand(Deno.execPath(), ["run", "-A", CLI, ...args], {
                timeoutMs: DENO_CHILD_TIMEOUT_MS,
                env: { ...env, ...extra },
              });
            const listed = await ctnr({}, "list", "s3://ctnr-tests/sets/c 1.ctnr");
            assert.equal(listed.code, 0, listed.stderr);
            assert.deepEqual(listed.stdout.trim().split("\n").sort(), ["c.bin", "docs/a b.txt"]);
            const cat = await ctnr({}, "cat", "s3://ctnr-tests/sets/c 1.ctnr", "docs/a b.txt");
            assert.equal(cat.code, 0, cat.stderr);
            assert.equal(cat.stdout, "hello from s3");
            const wrong = await ctnr(
              { AWS_SECRET_ACCESS_KEY: "not-testing" },
              "list",
              "s3://ctnr-tests/sets/c 1.ctnr",
            );
            assert.equal(wrong.code, 1, wrong.stderr);
            assert.match(wrong.stderr, /403/);
          });
        },
      );
    } finally {
      await swift.stop();
    }
  },
});
