import assert from "node:assert/strict";
import { once } from "node:events";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { afterEach, describe, test } from "node:test";
import { assertConsistent, type FailoverRun, publishThroughFailover } from "./failover-harness.ts";
import {
  type HubProcess,
  publish,
  startHub,
  stopAllHubs,
  streamIds,
  uniquePrefix,
} from "./redis-harness.ts";
import {
  cli,
  redisToolsSkipReason,
  type SentinelGroup,
  startSentinelGroup,
} from "./redis-servers.ts";

const skip = redisToolsSkipReason("redis-sentinel");
let group: SentinelGroup | undefined;

/**
 * A primary, `replicas` replicas and one Sentinel, all on free ports; two hub nodes on them with
 * `args`, two followers each; a publish every 20 ms alternating between the nodes,
 * `SENTINEL FAILOVER` after the 40th, until 40 more were acknowledged (failover-harness.ts).
 */
async function failover(replicas: number, args: string[]) {
  const servers = await startSentinelGroup({ replicas });
  group = servers;
  const prefix = uniquePrefix("sentinel");
  const hubs = (await Promise.all([
    startHub(prefix, { redisUrl: servers.url, args }),
    startHub(prefix, { redisUrl: servers.url, args }),
  ])) as [HubProcess, HubProcess];
  let newPrimary = 0;
  const run = await publishThroughFailover(
    hubs,
    async () => {
      await cli(servers.sentinel, "sentinel", "failover", servers.name);
    },
    async () => {
      newPrimary = await servers.currentPrimary();
      return streamIds(prefix, `redis://127.0.0.1:${newPrimary}`);
    },
  );
  await stopAllHubs();
  return { ...run, newPrimary, replicaPorts: servers.replicas };
}

function assertFailedOver(
  run: FailoverRun & { newPrimary: number; replicaPorts: readonly number[] },
) {
  assert.ok(run.replicaPorts.includes(run.newPrimary), "a replica is the primary now");
  assertConsistent(run);
}

describe("two hub nodes behind Sentinel, through SENTINEL FAILOVER", {
  skip,
  timeout: 180_000,
}, () => {
  afterEach(async () => {
    await stopAllHubs();
    group?.stop();
    group = undefined;
  });

  test("a Sentinel that takes connections and never answers, listed first, holds up neither the start nor publishing", async () => {
    const servers = await startSentinelGroup({ replicas: 0 });
    group = servers;
    const sockets = new Set<Socket>();
    const hung = createServer((socket) => {
      sockets.add(socket);
      socket.on("error", () => {});
    });
    hung.listen(0, "127.0.0.1");
    await once(hung, "listening");
    try {
      const { port } = hung.address() as AddressInfo;
      const url = `redis+sentinel://127.0.0.1:${port},127.0.0.1:${servers.sentinel}/${servers.name}`;
      const hub = await startHub(uniquePrefix("sentinel-hung"), { redisUrl: url });
      const result = await publish(hub.url, { topic: "t", data: "through the second Sentinel" });
      assert.equal(result.status, 200, result.body);
      assert.ok(sockets.size > 0, "the hung Sentinel was asked first");
    } finally {
      for (const socket of sockets) socket.destroy();
      hung.close();
    }
  });

  test("a primary and a replica: publishes resume within seconds; a subscriber that received an update the failover lost is told earliest", async () => {
    const run = await failover(1, []);
    assertFailedOver(run);
    // The first acknowledged publish after the failover began came within a few seconds.
    const first = run.results.find((r, n) => n > 40 && r.status === 200);
    assert.ok(first !== undefined && first.at - run.failedOverAt < 10_000);
  });

  test("with --redis-wait-replicas 1: every acknowledged publish survives the failover and reaches every subscriber", async () => {
    // The one replica is the one promoted: what it confirmed, it holds. The new primary has no
    // replica until Sentinel turns the old one into one, and refuses publishes until then.
    const run = await failover(1, ["--redis-wait-replicas", "1"]);
    assertFailedOver(run);
    const held = new Set(run.order);
    const refused = new Set<string>();
    for (const [n, result] of run.results.entries()) {
      if (result.status === 200) assert.ok(held.has(result.body), `acknowledged ${n} was lost`);
      else refused.add(`${n}`);
    }
    // Whatever was delivered and then lost had been refused to its publisher.
    for (const { client } of run.followers) {
      for (const [i, id] of client.ids.entries()) {
        if (!held.has(id))
          assert.ok(refused.has(client.data[i] as string), `${id} was acknowledged`);
      }
    }
  });
});
