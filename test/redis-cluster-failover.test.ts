/**
 * Two hub nodes on a Redis Cluster of three primaries and three replicas (node timeout 2 s),
 * through a failover of the primary that holds their prefix's slot, three ways: a manual one
 * (`CLUSTER FAILOVER` on its replica, which first catches up), a forced one (`… TAKEOVER`, which
 * does not), and the primary killed. Each test takes a fresh prefix on a shard that still has a
 * replica. The checks are the Sentinel failover's (failover-harness.ts).
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, afterEach, before, describe, test } from "node:test";
import { Cluster } from "ioredis";
import { keyBase } from "../src/history/redis-keys.ts";
import { assertConsistent, publishThroughFailover } from "./failover-harness.ts";
import { until } from "./helpers.ts";
import { type HubProcess, startHub, stopAllHubs, uniquePrefix } from "./redis-harness.ts";
import {
  cli,
  ownerOf,
  type RedisCluster,
  redisToolsSkipReason,
  startCluster,
} from "./redis-servers.ts";

const skip = redisToolsSkipReason("redis-cluster-failover");

describe("two hub nodes on a Redis Cluster, through a failover of their slot's primary", {
  skip,
  timeout: 240_000,
}, () => {
  let cluster: RedisCluster | undefined;
  const killed = new Set<number>();

  before(async () => {
    cluster = await startCluster({ primaries: 3, replicas: 1 });
  });
  afterEach(stopAllHubs);
  after(() => cluster?.stop());

  const up = () => cluster as RedisCluster;
  const alive = () => up().ports.find((port) => !killed.has(port)) as number;
  const child = (port: number) => up().children[up().ports.indexOf(port)] as ChildProcess;

  /** The stream's ids under `prefix`, read from the primary that holds it now. */
  async function streamIds(prefix: string): Promise<string[]> {
    const seeds = up().ports.filter((port) => !killed.has(port));
    const client = new Cluster(seeds.map((port) => ({ host: "127.0.0.1", port })));
    try {
      const entries = await client.xrange(`${keyBase(prefix)}stream`, "-", "+");
      return entries.map(([position, fields]) => {
        const field = (name: string) => fields[fields.indexOf(name) + 1] as string;
        const payload = JSON.parse(field("u")) as { i?: string };
        return payload.i ?? `#${field("e")}:${position}`;
      });
    } finally {
      client.disconnect();
    }
  }

  /**
   * Two hubs on a fresh prefix whose slot's primary has a replica (a shard whose primary was
   * killed has none left), and that primary and replica.
   */
  async function setUp(name: string) {
    for (let attempt = 0; ; attempt++) {
      const prefix = uniquePrefix(name);
      const key = `${keyBase(prefix)}stream`;
      const { primary, replicas } = await ownerOf(alive(), key);
      const replica = replicas[0];
      if (replica !== undefined)
        return {
          ...(await hubsOn(prefix)),
          prefix,
          key,
          primary: primary.port,
          replica: replica.port,
        };
      assert.ok(attempt < 50, "a shard with a replica");
    }
  }

  async function hubsOn(prefix: string) {
    const hubs = (await Promise.all([
      startHub(prefix, { redisUrl: up().url }),
      startHub(prefix, { redisUrl: up().url }),
    ])) as [HubProcess, HubProcess];
    return { hubs };
  }

  test("CLUSTER FAILOVER on the replica: every publish answered 200 or 5xx, publishing resumes, subscribers hold the stream with no duplicate and no gap", async () => {
    const { prefix, key, replica, hubs } = await setUp("cluster-failover");
    const run = await publishThroughFailover(
      hubs,
      async () => {
        await cli(replica, "cluster", "failover");
      },
      () => streamIds(prefix),
    );
    assert.equal((await ownerOf(alive(), key)).primary.port, replica, "the replica took over");
    assertConsistent(run);
    // A manual failover waits for the replica to hold everything: nothing acknowledged is lost.
    const held = new Set(run.order);
    for (const [n, result] of run.results.entries()) {
      if (result.status === 200) assert.ok(held.has(result.body), `acknowledged ${n} was lost`);
    }
    const first = run.results.find((r, n) => n > 40 && r.status === 200);
    assert.ok(first !== undefined && first.at - run.failedOverAt < 10_000);
  });

  test("CLUSTER FAILOVER TAKEOVER on the replica (no agreement, no catching up): the same, except that an update the old primary took meanwhile may be lost and its subscribers told earliest", async () => {
    const { prefix, key, replica, hubs } = await setUp("cluster-takeover");
    const run = await publishThroughFailover(
      hubs,
      async () => {
        await cli(replica, "cluster", "failover", "takeover");
      },
      () => streamIds(prefix),
    );
    assert.equal((await ownerOf(alive(), key)).primary.port, replica, "the replica took over");
    assertConsistent(run);
  });

  test("the slot's primary killed: the replica takes over within seconds; publishes meanwhile are refused, not left hanging; subscribers hold the stream with no duplicate and no gap (or are told earliest)", async () => {
    const { prefix, key, primary, replica, hubs } = await setUp("cluster-kill");
    const run = await publishThroughFailover(
      hubs,
      async () => {
        killed.add(primary);
        child(primary).kill("SIGKILL");
      },
      () => streamIds(prefix),
    );
    await until(
      async () => (await ownerOf(alive(), key)).primary.port === replica,
      "the replica to take over",
    );
    assertConsistent(run);
  });
});
