import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  CuttableProxy,
  deletePrefix,
  type HubProcess,
  publish,
  REDIS_URL,
  redisSkipReason,
  SseClient,
  startHub,
  stopAllHubs,
  streamIds,
  uniquePrefix,
  waitFor,
} from "./redis-harness.ts";

const skip = await redisSkipReason("redis-outage (Redis unreachable while publishing)");

describe("Redis unreachable while publishing", { skip, timeout: 60_000 }, () => {
  const prefix = uniquePrefix("outage");
  const proxy = new CuttableProxy(new URL(REDIS_URL));
  const clients: SseClient[] = [];

  after(async () => {
    for (const client of clients) client.close();
    await stopAllHubs();
    await proxy.cut();
    await deletePrefix(prefix);
  });

  test("publishes fail fast with 503, subscribers stay, and nothing acknowledged is lost", async () => {
    await proxy.open();
    const behindProxy = await startHub(prefix, { redisUrl: `redis://127.0.0.1:${proxy.port}` });
    const direct = await startHub(prefix);
    for (const hub of [behindProxy, behindProxy, direct]) {
      const client = new SseClient("news");
      await client.connect(hub.url);
      clients.push(client);
    }
    const [cutOff] = clients as [SseClient];

    let phase: "before" | "outage" | "after" = "before";
    const results: { hub: HubProcess; phase: string; status: number; body: string; ms: number }[] =
      [];
    let n = 0;
    const publishBoth = async () => {
      for (const hub of [behindProxy, direct]) {
        const result = await publish(hub.url, { topic: "news", data: `${n++}` });
        results.push({ hub, phase, ...result });
      }
    };
    const publishFor = async (ms: number) => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        await publishBoth();
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    };

    await publishFor(500);
    await proxy.cut();
    phase = "outage";
    await new Promise((resolve) => setTimeout(resolve, 200)); // the hub notices the cut
    const commentsAtCut = cutOff.comments;
    await publishFor(3000);
    const commentsDuringOutage = cutOff.comments - commentsAtCut;
    await proxy.open();
    phase = "after";
    const recovering = Date.now();
    while (results.at(-2)?.status !== 200) {
      assert.ok(Date.now() - recovering < 10_000, "publishing recovers once Redis is back");
      await publishFor(100);
    }
    await publishFor(500);

    const outage = results.filter((r) => r.phase === "outage");
    const cutHub = outage.filter((r) => r.hub === behindProxy);
    assert.ok(cutHub.length > 5, `${cutHub.length} publishes tried during the outage`);
    for (const r of cutHub) {
      assert.equal(r.status, 503, r.body);
      assert.match(r.body, /Redis/);
      assert.ok(r.ms < 2500, `a publish during the outage took ${r.ms} ms`);
    }
    for (const r of outage.filter((r) => r.hub === direct)) assert.equal(r.status, 200, r.body);

    const acked = results.filter((r) => r.status === 200).map((r) => r.body);
    const order = await streamIds(prefix);
    assert.deepEqual([...order].sort(), [...acked].sort());
    await waitFor(() => clients.every((c) => c.ids.length >= order.length), 10_000, "delivery");
    await new Promise((resolve) => setTimeout(resolve, 200)); // anything extra would show now
    for (const client of clients) {
      assert.deepEqual(client.ids, order);
      assert.equal(client.ends, 0, "the subscriber stayed connected");
    }
    assert.ok(commentsDuringOutage > 0, "keep-alives continued during the outage");
  });
});
