/**
 * Child process of tests/shard_create_test.ts: runs `createShards` and kills itself with
 * SIGKILL once `killAfter` entries are committed (a crash at a known point of the run).
 *
 * Argument: JSON `{ src, container, options, killAfter }`.
 *
 * @module
 */

import { createShards, type ShardOptions } from "../mod.ts";

if (import.meta.main) {
  const request: { src: string; container: string; options: ShardOptions; killAfter: number } = JSON
    .parse(Deno.args[0]!);
  let committed = 0;
  await createShards(request.src, request.container, {
    ...request.options,
    onEntry: () => {
      if (++committed === request.killAfter) Deno.kill(Deno.pid, "SIGKILL");
    },
  });
  console.error("not killed");
}
