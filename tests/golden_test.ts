/**
 * Golden containers: a fixed tree (contents, modes, mtimes) must pack into
 * exactly these bytes, plain and gzip, finalized or not. A change of the
 * code that moves one byte of a container fails here; a change of the
 * format must update the digests on purpose, and say so.
 *
 * The gzip digests hold for the zlib inside Deno 2.9.6 (the version CI
 * installs): another runtime's zlib may write other, equally valid members.
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createContainer, type CreateOptions } from "../mod.ts";
import { pseudoRandomBytes, withTempDir } from "./_helpers.ts";

/** SHA-256 of the container and of its index, per options. */
const GOLDEN: [string, CreateOptions, string, string][] = [
  [
    "plain",
    {},
    "d6fc1f32745f21307c7552271bcee5f5c05502dfdd5381ca97ce083ede571390",
    "232a76f89b5232ee7290f368e63429879e9e6c73c66582d6af57730fede03458",
  ],
  [
    "plain, finalized",
    { finalize: true },
    "7611e98f5e64cb8457a8fe3bc5289ab0e3cb0a4369b6898fbf1681a8efed878a",
    "232a76f89b5232ee7290f368e63429879e9e6c73c66582d6af57730fede03458",
  ],
  [
    "gzip, finalized",
    { compress: true, finalize: true },
    "888bbb23526491e36702fccd46fd228bbd196bf88451115dc701babfbd8162a8",
    "74ea44f4c1d33f3e77aa50948ec35263156b1935ed5073a1efe9eb3ce5c5ee83",
  ],
  [
    "gzip, 1 KiB pieces, small batches",
    { compress: true, chunkSize: 1024, fsyncEvery: 3, indexBatch: 5 },
    "2dbc19730a495e89b0337c9eda846ebb9215c8ed239a7ae31d24526d66602790",
    "e98cf39a5fa560647e5978abf2f1357496a1a8c5de7066cdf26b633bd098a05c",
  ],
];

/** The tree: small and empty files, a big file (streamed), unicode names, an empty folder. */
async function writeGoldenTree(root: string): Promise<void> {
  const files: [string, Uint8Array | string, number][] = [
    ["a.txt", "alpha\n", 0o644],
    ["empty.bin", "", 0o600],
    ["docs/readme.md", "# Readme\n\n" + "Some text. ".repeat(400), 0o644],
    ["docs/caf\u00e9.txt", "unicode name", 0o640],
    ["data/noise.bin", pseudoRandomBytes(70_000, 1), 0o644],
    ["data/big.bin", pseudoRandomBytes(1_300_000, 2), 0o755],
    ["deep/x/y/z/leaf.txt", "leaf", 0o444],
  ];
  for (let i = 0; i < 600; i++) {
    files.push([`many/f${String(i).padStart(3, "0")}.txt`, `${i}\n`, 0o644]);
  }
  let mtime = 1_600_000_000.5;
  for (const [relpath, content, mode] of files) {
    const path = `${root}/${relpath}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    if (typeof content === "string") await Deno.writeTextFile(path, content);
    else await Deno.writeFile(path, content);
    await Deno.chmod(path, mode);
    await Deno.utime(path, mtime, mtime);
    mtime += 61.25;
  }
  await Deno.mkdir(`${root}/hollow`);
  await Deno.chmod(`${root}/hollow`, 0o750);
  await Deno.utime(`${root}/hollow`, 1_500_000_000, 1_500_000_000);
}

Deno.test("createContainer writes the golden bytes for a fixed tree", async () => {
  await withTempDir(async (dir) => {
    await writeGoldenTree(`${dir}/src`);
    const found: string[] = [];
    for (const [name, options, container, index] of GOLDEN) {
      const path = `${dir}/${name.replaceAll(/[ ,]+/g, "-")}.ctnr`;
      await createContainer(`${dir}/src`, path, options);
      const actual = [await sha256File(path), await sha256File(`${path}.idx`)];
      found.push(`${name}: ${actual.join(" ")}`);
      if (Deno.env.get("GOLDEN_PRINT")) console.log(`GOLDEN ${name}: ${actual.join(" ")}`);
      else assert.deepEqual(actual, [container, index], `${name}\n${found.join("\n")}`);
    }
  });
});

async function sha256File(path: string): Promise<string> {
  return createHash("sha256").update(await Deno.readFile(path)).digest("hex");
}

/**
 * Names that sort differently by UTF-16 and by code point, non-ASCII names in every UTF-8
 * length, links, a private folder, an empty one, and a name refused as the NFC twin of another.
 */
async function writeNamesTree(root: string): Promise<string[]> {
  const names = [
    "a",
    "a b",
    "a-b",
    "ab",
    "B",
    "\u00e9t\u00e9", // NFC "été"
    "e\u0301te\u0301", // the same after NFC: refused
    "\uff5e wave", // 3 bytes, sorts before the 4-byte emoji (UTF-16 says after)
    "\u{1f600} smile",
    "\ue000 private use",
    "\u65e5\u672c",
    "z",
  ];
  let mtime = 1_600_000_000.25;
  const stamp = async (path: string) => {
    await Deno.utime(path, mtime, mtime);
    mtime += 7.5;
  };
  for (const folder of ["", "sub/", "sub/\u00e9/"]) {
    await Deno.mkdir(`${root}/${folder}`, { recursive: true });
    for (const name of names) {
      await Deno.writeTextFile(`${root}/${folder}${name}`, `${folder}${name}\n`);
      await Deno.chmod(`${root}/${folder}${name}`, 0o644);
      await stamp(`${root}/${folder}${name}`);
    }
  }
  await Deno.mkdir(`${root}/private/empty`, { recursive: true });
  await Deno.chmod(`${root}/private`, 0o700);
  await Deno.mkdir(`${root}/\u00fcber leer`);
  await Deno.symlink("sub/\u65e5\u672c", `${root}/\u00fcber link`);
  await Deno.symlink("../a", `${root}/sub/link`);
  for (const folder of ["private/empty", "private", "\u00fcber leer", "sub/\u00e9", "sub"]) {
    await stamp(`${root}/${folder}`);
  }
  // A link's own mtime (Deno.utime follows links).
  const { lutimesSync } = await import("node:fs");
  for (const link of ["\u00fcber link", "sub/link"]) {
    lutimesSync(`${root}/${link}`, mtime, mtime);
    mtime += 7.5;
  }
  return names;
}

Deno.test("createContainer walks names in code-point order into the same bytes", async () => {
  await withTempDir(async (dir) => {
    await writeNamesTree(`${dir}/src`);
    const path = `${dir}/names.ctnr`;
    const refused: string[] = [];
    await createContainer(`${dir}/src`, path, {
      onSourceError: (error) => refused.push(error.relpath ?? ""),
    });
    const actual = [await sha256File(path), await sha256File(`${path}.idx`)];
    if (Deno.env.get("GOLDEN_PRINT")) console.log(`GOLDEN names: ${actual.join(" ")}`);
    else assert.deepEqual(actual, [NAMES_CONTAINER, NAMES_INDEX]);
    assert.deepEqual(
      refused.sort(),
      [
        "e\u0301te\u0301",
        "sub/e\u0301te\u0301",
        "sub/\u00e9/e\u0301te\u0301",
      ].sort(),
    );
  });
});

/** SHA-256 of the names tree's container and index (measured before the walk listed into bytes). */
const NAMES_CONTAINER = "199267f24043b35e51057a708ac3b51fa589ace848e0e083f3dcd02ba18bbf94";
const NAMES_INDEX = "ae8578e33d2b3fba1bcfec2c4c1a6988df068f47675f7e201397afa89bfcc974";
