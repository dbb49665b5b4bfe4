import assert from "node:assert/strict";
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { loadNats, NatsBackplane } from "../src/backplane/nats.ts";
import { isCrierError } from "../src/errors.ts";
import { NatsHistory, StaleEpochError } from "../src/history/nats.ts";
import type { Update } from "../src/update.ts";
import { until } from "./helpers.ts";
import {
  deleteStream,
  NATS_URL,
  NatsServer,
  natsSkipReason,
  uniqueStream,
} from "./nats-harness.ts";
import { publish, SseClient, startHub, stopAllHubs } from "./redis-harness.ts";

const skip = await natsSkipReason("nats-backplane (the NATS JetStream backplane)");

const fields = (data: string, id?: string) => ({ topics: ["t"], data, id, private: false });

interface Node {
  readonly backplane: NatsBackplane;
  readonly delivered: Update[];
  resets: number;
}

async function node(options: ConstructorParameters<typeof NatsBackplane>[0]): Promise<Node> {
  const backplane = new NatsBackplane(options);
  const n: Node = { backplane, delivered: [], resets: 0 };
  await backplane.start(
    (update) => n.delivered.push(update),
    () => n.resets++,
  );
  return n;
}

/** The sequence of a generated id, `#<epoch>:<sequence>`. */
const sequenceOf = (update: Update) => Number(update.id.split(":")[1]);

describe("the crier-hub/nats entry point", () => {
  test("without the NATS client installed, says to install it with a typed error", () => {
    const missing = (id: string) => {
      throw Object.assign(new Error(`Cannot find module '${id}'`), { code: "MODULE_NOT_FOUND" });
    };
    assert.throws(
      () => loadNats(missing),
      (err) =>
        isCrierError(err, "CRIER_ERR_MISSING_DEPENDENCY") &&
        /npm install @nats-io\/transport-node @nats-io\/jetstream/.test(err.message),
    );
  });

  test("refuses a stream name NATS would not take, when the backplane is made", () => {
    assert.throws(
      () => new NatsBackplane({ stream: "a.b" }),
      (err) => isCrierError(err, "CRIER_ERR_INVALID_OPTION"),
    );
  });

  test("refuses, when the backplane is made, a URL or max age the connection would fail on later", () => {
    for (const [options, reason] of [
      [{ url: "nats://%zz@127.0.0.1:4222" }, /has a token that is not percent-encoded UTF-8/],
      [{ url: "nats://u:p%zz@127.0.0.1:4222" }, /has a password that is not percent-encoded/],
      [{ url: "nats://:secret@127.0.0.1:4222" }, /has a password and no user/],
      [{ maxAgeMs: 50 }, /maxAgeMs must be 0 \(none\) or at least 100 ms/],
    ] as const) {
      assert.throws(
        () => new NatsBackplane(options),
        (err) =>
          isCrierError(err, "CRIER_ERR_INVALID_OPTION") &&
          reason.test(err.message) &&
          !err.message.includes("secret"),
        JSON.stringify(options),
      );
    }
  });
});

describe("the NATS backplane on a server that restarts", { skip, timeout: 90_000 }, () => {
  const server = new NatsServer();
  const nodes: Node[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.backplane.close()));
    await server.remove();
  });

  test("loses nothing silently: every node resumes by sequence after a restart mid-stream", async () => {
    await server.start();
    const stream = uniqueStream("restart");
    for (let i = 0; i < 2; i++) nodes.push(await node({ url: server.url, stream }));
    const [a, b] = nodes as [Node, Node];
    const acked: string[] = [];
    const refused: string[] = [];
    let stop = false;
    // A steady stream of publishes through one node, answered or refused, while the server goes.
    const publishing = (async () => {
      for (let i = 0; !stop; i++) {
        try {
          acked.push((await a.backplane.publish(fields(`${i}`))).id);
        } catch (err) {
          assert.ok(isCrierError(err, "CRIER_ERR_UNAVAILABLE"), String(err));
          refused.push(`${i}`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    })();
    await until(() => acked.length >= 100, "100 acknowledged before the restart");
    await server.stop("SIGKILL");
    await until(() => refused.length >= 3, "publishes refused while the server is away");
    await server.start();
    const before = acked.length;
    await until(() => acked.length >= before + 100, "100 acknowledged after the restart", 30_000);
    stop = true;
    await publishing;
    for (const n of [a, b]) {
      await until(() => n.delivered.length >= acked.length, "every acknowledged update delivered");
    }
    for (const n of [a, b]) {
      // Delivered: the stream itself, by consecutive sequences, each once, none reset.
      const seqs = n.delivered.map(sequenceOf);
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => (seqs[0] as number) + i),
      );
      for (const id of acked)
        assert.ok(
          n.delivered.some((u) => u.id === id),
          `${id} delivered`,
        );
      assert.equal(n.resets, 0);
    }
    assert.deepEqual(
      a.delivered.map((u) => u.id),
      b.delivered.map((u) => u.id),
    );
    // A refused publish was never stored (the connection was down before it was sent).
    const data = new Set(a.delivered.map((u) => u.data));
    for (const d of refused) assert.ok(!data.has(d), `refused ${d} was delivered`);
  });
});

describe("the NATS backplane on a server put back on an older copy of its store", {
  skip,
  timeout: 90_000,
}, () => {
  const server = new NatsServer();
  const nodes: Node[] = [];
  const copy = mkdtempSync(join(tmpdir(), "crier-nats-copy-"));
  after(async () => {
    await Promise.all(nodes.map((n) => n.backplane.close()));
    await server.remove();
    rmSync(copy, { recursive: true, force: true });
  });

  test("gives the stream a new epoch, sends live streams back, and gives no id twice", async () => {
    await server.start();
    const stream = uniqueStream("restored");
    const a = await node({ url: server.url, stream });
    const b = await node({ url: server.url, stream });
    nodes.push(a, b);
    const wentBack: number[] = [];
    for (const n of [a, b]) n.backplane.on("wentBack", (delivered) => wentBack.push(delivered));
    // The copy: the stream as made, before any update.
    await server.stop();
    cpSync(server.dir, copy, { recursive: true });
    await server.start();
    const before: Update[] = [];
    for (let i = 0; i < 5; i++) {
      await until(async () => {
        const update = await a.backplane.publish(fields(`a${i}`)).catch(() => undefined);
        if (update !== undefined) before.push(update);
        return update !== undefined;
      }, `update a${i}`);
    }
    await until(() => a.delivered.length === 5 && b.delivered.length === 5, "5 delivered each");
    await server.stop();
    rmSync(server.dir, { recursive: true, force: true });
    cpSync(copy, server.dir, { recursive: true });
    await server.start();
    const oldEpoch = (before[0] as Update).id.split(":")[0] as string;
    let after: Update | undefined;
    await until(
      async () => {
        const update = await a.backplane.publish(fields("after")).catch(() => undefined);
        if (update !== undefined && !update.id.startsWith(oldEpoch)) after = update;
        return after !== undefined;
      },
      "a publish under a new epoch",
      20_000,
    );
    const taken = after as Update;
    await until(
      () => a.delivered.at(-1)?.id === taken.id && b.delivered.at(-1)?.id === taken.id,
      "the new epoch's update on both nodes",
    );
    assert.ok(a.resets >= 1 && b.resets >= 1, "both nodes' live streams were sent back");
    assert.ok(wentBack.includes(5), `the stream going back was said: ${wentBack}`);
    for (const n of [a, b]) {
      const ids = n.delivered.map((u) => u.id);
      assert.equal(new Set(ids).size, ids.length, `no id delivered twice: ${ids}`);
    }
    // An id of the old epoch resumes from earliest.
    assert.equal(await a.backplane.replay((before[4] as Update).id), undefined);
  });
});

describe("the NATS backplane on a server without JetStream", { skip, timeout: 60_000 }, () => {
  const server = new NatsServer();
  after(() => server.remove());

  test("is down and refuses publishes as unavailable, then serves once the server has JetStream", async () => {
    await server.start({ jetstream: false });
    const backplane = new NatsBackplane({ url: server.url, stream: uniqueStream("no-js") });
    const downs: Error[] = [];
    backplane.on("down", (err) => downs.push(err));
    const delivered: Update[] = [];
    const started = backplane.start((update) => delivered.push(update));
    try {
      await until(() => downs.length > 0, "down: the server has no JetStream");
      await assert.rejects(backplane.publish(fields("refused")), (err) =>
        isCrierError(err, "CRIER_ERR_UNAVAILABLE"),
      );
      await server.stop();
      await server.start(); // the same port, with JetStream
      await until(() => backplane.available, "up once the server has JetStream", 20_000);
      await started;
      const update = await backplane.publish(fields("served"));
      await until(() => delivered.some((u) => u.id === update.id), "the publish delivered");
      assert.deepEqual(
        delivered.map((u) => u.data),
        ["served"],
      );
    } finally {
      await backplane.close();
    }
  });
});

describe("the NATS backplane", { skip, timeout: 60_000 }, () => {
  const streams: string[] = [];
  const nodes: Node[] = [];
  after(async () => {
    await Promise.all(nodes.map((n) => n.backplane.close()));
    await stopAllHubs();
    await Promise.all(streams.map((s) => deleteStream(s)));
  });

  test("delivers its own publishes in the stream's order, early or from memory when it can", async () => {
    const stream = uniqueStream("early");
    streams.push(stream);
    const a = await node({ url: NATS_URL, stream });
    nodes.push(a);
    const published: Update[] = [];
    for (let burst = 0; burst < 3; burst++) {
      published.push(
        ...(await Promise.all(
          Array.from({ length: 50 }, (_, i) => a.backplane.publish(fields(`${i}`))),
        )),
      );
    }
    await until(() => a.delivered.length >= 150, "150 deliveries");
    // One sequence each, no holes, no repeats: the stream's order.
    assert.deepEqual(
      a.delivered.map(sequenceOf),
      Array.from({ length: 150 }, (_, i) => i + 1),
    );
    // Those delivered at their acknowledgement (or kept for the consumer) are the very updates
    // the publishes resolved with. (On one connection the server usually sends the consumer its
    // message before the acknowledgement, so few or none are delivered early here.)
    const { early, kept } = a.backplane.ownDelivered;
    const mine = new Set(published);
    assert.equal(a.delivered.filter((u) => mine.has(u)).length, early + kept);
  });

  test("three crier processes publishing at once: every subscriber sees the stream's order", async () => {
    const stream = uniqueStream("three");
    streams.push(stream);
    const engine = ["--nats", NATS_URL, "--nats-stream", stream];
    const hubs = await Promise.all([1, 2, 3].map(() => startHub("", { engine })));
    const clients = await Promise.all(
      hubs.flatMap((hub) =>
        [1, 2].map(async () => {
          const client = new SseClient("chat");
          await client.connect(hub.url);
          return client;
        }),
      ),
    );
    // Every node has publishes in flight at once, so each node's early deliveries race the
    // others' publishes.
    const acked: string[] = [];
    for (let batch = 0; batch < 10; batch++) {
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          publish(hubs[i % 3]?.url as string, { topic: "chat", data: `m${batch}.${i}` }),
        ),
      );
      for (const result of results) {
        assert.equal(result.status, 200, result.body);
        acked.push(result.body);
      }
    }
    await until(() => clients.every((c) => c.ids.length >= 120), "120 updates each", 10_000);
    const reader = await node({ url: NATS_URL, stream });
    nodes.push(reader);
    const stored = (await reader.backplane.replay("earliest"))?.updates.map((u) => u.id) ?? [];
    assert.deepEqual([...stored].sort(), [...acked].sort());
    await new Promise((resolve) => setTimeout(resolve, 200)); // anything extra would show now
    for (const client of clients) {
      assert.deepEqual(client.ids, stored);
      client.close();
    }
  });

  test("a deleted and recreated stream resets live streams and answers earliest for older ids", async () => {
    const stream = uniqueStream("epoch");
    streams.push(stream);
    const a = await node({ url: NATS_URL, stream });
    nodes.push(a);
    const epochs: string[] = [];
    a.backplane.on("epoch", (epoch) => epochs.push(epoch));
    const old = await a.backplane.publish(fields("old"));
    const mine = await a.backplane.publish(fields("mine", "mine"));
    await until(() => a.delivered.length === 2, "2 delivered");
    await deleteStream(stream);
    // Another node makes the stream anew; `a` notices and follows it.
    const b = await node({ url: NATS_URL, stream });
    nodes.push(b);
    const fresh = await b.backplane.publish(fields("new"));
    await until(() => a.resets >= 1 && epochs.length === 1, "a reset to the new stream");
    await until(() => a.delivered.at(-1)?.id === fresh.id, "the new stream delivered");
    assert.equal(await a.backplane.replay(old.id), undefined);
    assert.equal(await a.backplane.replay(mine.id), undefined);
    // The publisher id of the old stream may be used in the new one.
    assert.equal((await a.backplane.publish(fields("again", "mine"))).id, "mine");
    assert.notEqual(fresh.id.split(":")[0], old.id.split(":")[0]);
  });

  // Setting Crier's limits on another application's stream would trim its messages.
  test("refuses a stream it did not make, and changes nothing of it", async () => {
    const stream = uniqueStream("foreign");
    streams.push(stream);
    const { connect } = loadNats();
    const { jetstream, jetstreamManager } = await import("@nats-io/jetstream");
    const nc = await connect({ servers: NATS_URL });
    try {
      const jsm = await jetstreamManager(nc);
      const js = jetstream(nc);
      // `<name>.2024.>` has the shape of an epoch's subjects (2024 is hex), and another
      // stream's name with a real epoch's shape is not this one either.
      for (const subject of [`${stream}.>`, `${stream}.2024.>`, `other.0123456789ab.>`]) {
        await jsm.streams.add({ name: stream, subjects: [subject] });
        for (let i = 0; i < 20; i++) await js.publish(subject.replace(">", "x"), `message ${i}`);
        const history = new NatsHistory(js, jsm, { stream, maxLen: 5 });
        await assert.rejects(
          history.state(),
          (err) =>
            isCrierError(err, "CRIER_ERR_INVALID_OPTION") && /not made by Crier/.test(err.message),
          subject,
        );
        const info = await jsm.streams.info(stream);
        assert.equal(info.state.messages, 20, subject);
        assert.equal(info.config.max_msgs, -1, subject);
        await jsm.streams.delete(stream);
      }
    } finally {
      await nc.close();
    }
  });

  test("sets its limits on the stream when it starts, and not again at a resume or a count", async () => {
    const stream = uniqueStream("limits");
    streams.push(stream);
    const a = await node({ url: NATS_URL, stream, maxLen: 1000 });
    nodes.push(a);
    const b = await node({ url: NATS_URL, stream, maxLen: 5 });
    nodes.push(b);
    const published: Update[] = [];
    for (let i = 0; i < 3; i++) published.push(await a.backplane.publish(fields(`${i}`)));
    // A resume and a count on A, started first: the limits of B, started last, stand.
    await a.backplane.replay((published[0] as Update).id);
    await a.backplane.size();
    const { loadJetStream } = await import("../src/backplane/nats-client.ts");
    const { connect } = loadNats();
    const nc = await connect({ servers: NATS_URL });
    try {
      const jsm = await loadJetStream().jetstreamManager(nc);
      assert.equal((await jsm.streams.info(stream)).config.max_msgs, 5);
    } finally {
      await nc.close();
    }
  });

  test("refuses an update NATS cannot hold in one message as too large, not unavailable", async () => {
    const stream = uniqueStream("large");
    streams.push(stream);
    const n = await node({ url: NATS_URL, stream });
    nodes.push(n);
    // 600 KB of quotes: under the hub's 1 MiB, twice that once escaped in the stream's JSON.
    await assert.rejects(n.backplane.publish(fields('"'.repeat(600_000))), (err) =>
      isCrierError(err, "CRIER_ERR_PAYLOAD_TOO_LARGE"),
    );
    assert.equal((await n.backplane.publish(fields("small"))).data, "small");
  });

  test("a node that has not noticed a new stream is refused, not given an id of the old one", async () => {
    const stream = uniqueStream("stale");
    streams.push(stream);
    const { jetstream, jetstreamManager } = await import("@nats-io/jetstream");
    const { connect } = await import("@nats-io/transport-node");
    // As NatsBackplane connects: no caller stacks, so the client wraps its errors itself.
    const nc = await connect({ servers: new URL(NATS_URL).host, noAsyncTraces: true });
    try {
      const history = new NatsHistory(jetstream(nc), await jetstreamManager(nc), { stream });
      const { epoch } = await history.state();
      assert.equal(await history.append(epoch, fields("one"), 1500), 1);
      await deleteStream(stream);
      const fresh = await history.state();
      assert.notEqual(fresh.epoch, epoch);
      await assert.rejects(history.append(epoch, fields("stale"), 1500), StaleEpochError);
      assert.equal((await history.state()).messages, 0);
    } finally {
      await nc.close();
    }
  });

  test("two crier processes with --nats share updates, and a client resumes on the other", async () => {
    const stream = uniqueStream("cli");
    streams.push(stream);
    const engine = ["--nats", NATS_URL, "--nats-stream", stream];
    const [one, two] = await Promise.all([startHub("", { engine }), startHub("", { engine })]);
    const client = new SseClient("chat");
    await client.connect(one.url);
    const first = await publish(two.url, { topic: "chat", data: "1" });
    assert.equal(first.status, 200);
    await until(() => client.ids.length === 1, "the first update");
    client.close();
    const second = await publish(one.url, { topic: "chat", data: "2", id: "urn:two" });
    const third = await publish(two.url, { topic: "chat", data: "3" });
    assert.equal(second.body, "urn:two");
    await client.connect(two.url);
    await until(() => client.ids.length === 3, "the missed updates");
    assert.deepEqual(client.ids, [first.body, "urn:two", third.body]);
    assert.equal(client.resumedFrom, first.body);
    const duplicate = await publish(two.url, { topic: "chat", data: "x", id: "urn:two" });
    assert.equal(duplicate.status, 409);
    client.close();
  });
});
