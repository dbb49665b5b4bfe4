import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import { LocalBackplane } from "../src/backplane/local.ts";
import { isCrierError } from "../src/errors.ts";
import { createHub } from "../src/hub.ts";
import type { Sink } from "../src/subscriber.ts";
import type { Update, UpdateFields } from "../src/update.ts";
import { until } from "./helpers.ts";

/** Keeps every chunk it is given, by reference. */
class KeepingSink implements Sink {
  chunks: Buffer[] = [];
  start() {}
  write(chunk: Buffer) {
    this.chunks.push(chunk);
    return true;
  }
  end() {}
  destroy() {}
}

describe("Hub", () => {
  test("writes one chunk per subscriber per turn, and the same Buffer to subscribers with the same updates", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    const sinks = [new KeepingSink(), new KeepingSink(), new KeepingSink()];
    for (const sink of sinks) hub.connect(sink, { topics: ["t"] });
    const other = new KeepingSink();
    hub.connect(other, { topics: ["t", "u"] });
    await hub.publish({ topics: "t", data: "1" });
    await hub.publish({ topics: "u", data: "2" });
    await hub.publish({ topics: "t", data: "3" });
    await nextTurn();
    const [a, b, c] = sinks.map((sink) => sink.chunks.at(-1));
    assert.equal(sinks[0]?.chunks.length, 2, "the opening comment, then one chunk for the turn");
    assert.match(String(a), /data: 1\n\n.*data: 3\n\n$/s);
    assert.ok(a === b && b === c, "one copy for every subscriber with the same frames");
    assert.match(String(other.chunks.at(-1)), /data: 1\n\n.*data: 2\n\n.*data: 3\n\n$/s);
    await hub.close();
  });
});

describe("the flush window", () => {
  test("writes an update after a quiet spell in the same turn, and gathers the updates of later turns within the window into one write", async () => {
    const hub = createHub({ keepAliveMs: 0, flushWindowMs: 200 });
    const sink = new KeepingSink();
    hub.connect(sink, { topics: ["t"] });
    await hub.publish({ topics: "t", data: "1" });
    await nextTurn();
    assert.equal(sink.chunks.length, 2, "the opening comment, then the first update at once");
    // Three more publishes, each in a turn of its own, within the window of the first flush.
    for (const data of ["2", "3", "4"]) {
      await hub.publish({ topics: "t", data });
      await nextTurn();
    }
    assert.equal(sink.chunks.length, 2, "nothing written before the window has passed");
    await until(() => sink.chunks.length > 2, "the gathered write", 5000);
    assert.equal(sink.chunks.length, 3, "one write for the three");
    assert.match(
      String(sink.chunks[2]),
      /^id: [^\n]+\ndata: 2\n\nid: [^\n]+\ndata: 3\n\nid: [^\n]+\ndata: 4\n\n$/,
    );
    await hub.close();
  });

  test("with flushWindowMs 0, writes the updates of each turn in a write of their own", async () => {
    const hub = createHub({ keepAliveMs: 0, flushWindowMs: 0 });
    const sink = new KeepingSink();
    hub.connect(sink, { topics: ["t"] });
    for (const data of ["1", "2", "3"]) {
      await hub.publish({ topics: "t", data });
      await nextTurn();
    }
    assert.deepEqual(
      sink.chunks.slice(1).map((chunk) => /data: (\d)/.exec(String(chunk))?.[1]),
      ["1", "2", "3"],
    );
    await hub.close();
  });

  test("refuses a window that is not an integer from 0 to 1000 ms", () => {
    for (const flushWindowMs of [-1, 1.5, 1001, "5"]) {
      assert.throws(
        () => createHub({ keepAliveMs: 0, flushWindowMs: flushWindowMs as number }),
        (err) => isCrierError(err, "CRIER_ERR_INVALID_OPTION") && /flushWindowMs/.test(err.message),
      );
    }
  });
});

/** A connection whose every write costs `us` microseconds of CPU, as a socket's system call does. */
class SlowSink extends KeepingSink {
  constructor(readonly us: number) {
    super();
  }
  override write(chunk: Buffer) {
    const end = performance.now() + this.us / 1000;
    while (performance.now() < end);
    return super.write(chunk);
  }
}

const dataOf = (chunks: readonly Buffer[]): string[] =>
  chunks.map((chunk) => [...String(chunk).matchAll(/data: (\w+)/g)].map((m) => m[1]).join("+"));

describe("a flush longer than its slice", () => {
  // 1,000 subscribers at 50 µs a write: a flush of about 50 ms, written in slices of 10 ms.
  const SUBSCRIBERS = 1000;

  test("lets the event loop run between slices; an update accepted meanwhile rides along in the same flush for subscribers not yet written to", async () => {
    const hub = createHub({ keepAliveMs: 0, flushWindowMs: 0, pushback: false });
    const sinks = Array.from({ length: SUBSCRIBERS }, () => new SlowSink(50));
    for (const sink of sinks) hub.connect(sink, { topics: ["t"] });
    await until(() => sinks.every((sink) => sink.chunks.length === 1), "every stream opened");
    await hub.publish({ topics: "t", data: "first" });
    await nextTurn(); // runs after the flush's first slice, not after the whole flush
    const written = sinks.filter((sink) => sink.chunks.length === 2).length;
    assert.ok(written > 0 && written < SUBSCRIBERS, `a slice wrote to ${written} subscribers`);
    await hub.publish({ topics: "t", data: "second" });
    await until(
      () => sinks.every((sink) => dataOf(sink.chunks).join("+") === "+first+second"),
      "both updates everywhere",
      10_000,
    );
    const shapes = new Set(sinks.map((sink) => dataOf(sink.chunks.slice(1)).join(" | ")));
    assert.deepEqual(
      [...shapes].sort(),
      ["first | second", "first+second"],
      "written before the second update: two writes; after: one write carrying both",
    );
    assert.deepEqual(hub.stats.backlog, { ageMs: 0, updates: 0, bytes: 0 });
    await hub.close();
  });

  test("while a publish waits for its backplane's answer, slices are short: the answer and its update are not held up by the rest of the flush", async () => {
    const hub = createHub({
      keepAliveMs: 0,
      flushWindowMs: 0,
      pushback: false,
      backplane: new AnswersNextTurn(),
    });
    const sinks = Array.from({ length: SUBSCRIBERS }, () => new SlowSink(50));
    for (const sink of sinks) hub.connect(sink, { topics: ["t"] });
    await until(() => sinks.every((sink) => sink.chunks.length === 1), "every stream opened");
    await hub.publish({ topics: "t", data: "first" });
    await nextTurn(); // after the flush's first slice (10 ms: 256 writes, the clock read every 64)
    const writes = () => sinks.reduce((n, sink) => n + sink.chunks.length, 0);
    const before = writes();
    assert.ok(before - SUBSCRIBERS < SUBSCRIBERS, "the flush of the first update is under way");
    await hub.publish({ topics: "t", data: "second" });
    const whileWaiting = writes() - before;
    // Without short slices the answer would wait for a whole slice of 256 writes; with them, 64
    // (the first look at the clock after a millisecond).
    assert.ok(whileWaiting < 100, `${whileWaiting} writes while the publish waited for its answer`);
    await until(
      () => sinks.every((sink) => dataOf(sink.chunks).join("+") === "+first+second"),
      "both updates everywhere",
      10_000,
    );
    const rodeAlong = sinks.filter((sink) => sink.chunks.length === 2).length;
    assert.ok(rodeAlong > 0, "the second update rode along in the flush under way");
    await hub.close();
  });

  for (const [kind, backplane] of [
    ["in memory", () => new LocalBackplane()],
    ["answering a turn later (short slices)", () => new AnswersNextTurn()],
  ] as const) {
    test(`subscribers that leave, arrive or back up between slices, ${kind}: the others get every update once, in order`, async () => {
      const hub = createHub({
        keepAliveMs: 0,
        flushWindowMs: 0,
        pushback: false,
        backplane: backplane(),
      });
      const sinks = Array.from({ length: SUBSCRIBERS }, () => new SlowSink(50));
      const connections = sinks.map((sink) => hub.connect(sink, { topics: ["t"] }));
      await until(() => sinks.every((sink) => sink.chunks.length === 1), "every stream opened");
      const late: SlowSink[] = [];
      const updates = Array.from({ length: 20 }, (_, i) => `u${i}`);
      for (const [i, data] of updates.entries()) {
        await hub.publish({ topics: "t", data });
        await nextTurn(); // a slice
        // Between slices: one subscriber leaves, one arrives, one backs up then drains.
        connections[i * 7]?.gone("client");
        const sink = new SlowSink(50);
        late.push(sink);
        hub.connect(sink, { topics: ["t"] });
        const backedUp = sinks[i * 7 + 3] as SlowSink;
        const write = backedUp.write.bind(backedUp);
        backedUp.write = (chunk) => {
          write(chunk);
          backedUp.write = write;
          setTimeout(() => connections[i * 7 + 3]?.drained(), 5);
          return false;
        };
      }
      const stayed = sinks.filter((_, i) => i % 7 !== 0 || i >= updates.length * 7);
      const all = updates.join("+");
      await until(
        () => stayed.every((sink) => dataOf(sink.chunks).join("+") === `+${all}`),
        "every update to those that stayed",
        20_000,
      );
      // A late stream is further down the flush list than those that stayed, so it may get the
      // last update a flush later: exactly the updates after its arrival, each once, in order.
      const expected = (i: number) => ["", ...updates.slice(i + 1)].join("+");
      await until(
        () => late.every((sink, i) => dataOf(sink.chunks).join("+") === expected(i)),
        "each late stream: the updates after its arrival, nothing else",
        20_000,
      );
      assert.equal(hub.stats.subscribers, SUBSCRIBERS - updates.length + late.length);
      await hub.close();
    });
  }

  test("a sink that throws is reported and dropped, and the flush goes on to the others, then and later", async () => {
    const hub = createHub({ keepAliveMs: 0, flushWindowMs: 0 });
    const errors: unknown[] = [];
    const reasons: string[] = [];
    hub.on("error", (err) => errors.push(err));
    hub.on("disconnect", (_, reason) => reasons.push(reason));
    const before = new KeepingSink();
    const broken = new KeepingSink();
    const after = new KeepingSink();
    hub.connect(before, { topics: ["t"] });
    hub.connect(broken, { topics: ["t"] });
    hub.connect(after, { topics: ["t"] });
    broken.write = () => {
      throw new Error("the app's sink broke");
    };
    broken.destroy = () => {
      throw new Error("and cannot be destroyed either");
    };
    await hub.publish({ topics: "t", data: "one" });
    await until(() => after.chunks.length === 2, "the subscriber after the broken one");
    await hub.publish({ topics: "t", data: "two" });
    await until(() => after.chunks.length === 3, "a later flush");
    for (const sink of [before, after]) assert.deepEqual(dataOf(sink.chunks), ["", "one", "two"]);
    assert.deepEqual(
      errors.map((err) => (err as Error).message),
      ["the app's sink broke", "and cannot be destroyed either"],
    );
    assert.deepEqual(reasons, ["closed"]);
    assert.equal(hub.stats.subscribers, 2);
    assert.deepEqual(hub.stats.backlog, { ageMs: 0, updates: 0, bytes: 0 });
    await hub.close();
  });

  test("counts an update in the backlog until the flush has written it everywhere, and a held publish resolves only then", async () => {
    const hub = createHub({ keepAliveMs: 0, flushWindowMs: 0, pushback: { holdMs: 1 } });
    const sinks = Array.from({ length: SUBSCRIBERS }, () => new SlowSink(50));
    for (const sink of sinks) hub.connect(sink, { topics: ["t"] });
    await until(() => sinks.every((sink) => sink.chunks.length === 1), "every stream opened");
    void hub.publish({ topics: "t", data: "first" });
    await nextTurn();
    assert.equal(hub.stats.backlog.updates, 1, "mid-flush, the first update is not out yet");
    assert.ok(hub.stats.backlog.bytes > 0);
    // Past the hold threshold (1 ms): stored at once, answered once written everywhere.
    await new Promise((resolve) => setTimeout(resolve, 2));
    const held = await hub.publish({ topics: "t", data: "second" });
    assert.ok(held.id !== "");
    assert.ok(hub.stats.pushback.held >= 1);
    const missing = sinks.filter((sink) => !dataOf(sink.chunks).join("+").endsWith("second"));
    assert.equal(missing.length, 0, "resolved once every subscriber had the update");
    assert.equal(hub.stats.backlog.updates, 0);
    await hub.close();
  });
});

/**
 * The in-memory backplane answering a publish one event-loop turn later, as an engine's answer
 * comes back over a socket: the update is stored and delivered then.
 */
class AnswersNextTurn extends LocalBackplane {
  override async publish(fields: UpdateFields): Promise<Update> {
    await nextTurn();
    return super.publish(fields);
  }
}

/** A connection that is backed up from the first write on: everything offered stays queued. */
class BackedUpSink extends KeepingSink {
  override write(chunk: Buffer) {
    super.write(chunk);
    return false;
  }
}

describe("Hub lifecycle and overflow", () => {
  test("refuses publishes and subscriptions after close() with CRIER_ERR_HUB_CLOSED", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    await hub.close();
    await hub.close(); // idempotent
    await assert.rejects(hub.publish({ topics: "t", data: "late" }), (err) =>
      isCrierError(err, "CRIER_ERR_HUB_CLOSED"),
    );
    assert.throws(
      () => hub.connect(new KeepingSink(), { topics: ["t"] }),
      (err) => isCrierError(err, "CRIER_ERR_HUB_CLOSED"),
    );
  });

  test("ends and counts out a resume whose backplane throws instead of rejecting", async () => {
    // As a damaged history file does: `replay` throws synchronously.
    class Damaged extends LocalBackplane {
      override replay(): never {
        throw new SyntaxError("Unexpected token { in JSON");
      }
    }
    const hub = createHub({ keepAliveMs: 0, backplane: new Damaged() });
    const errors: unknown[] = [];
    hub.on("error", (err) => errors.push(err));
    const subscription = hub.connect(new KeepingSink(), { topics: ["t"], lastEventId: "x" });
    assert.equal(subscription.closed, true, "ended, not left registered and unanswered");
    assert.equal(hub.stats.subscribers, 0);
    assert.equal(errors.length, 1, "the failure is reported");
    await hub.close();
  });

  test("writes an update published in the turn it closes before each stream's retry hint", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    const sink = new KeepingSink();
    hub.connect(sink, { topics: ["t"] });
    const consumed: string[] = [];
    const consumer = (async () => {
      for await (const update of hub.updates({ topics: ["t"] })) consumed.push(update.data);
    })();
    await hub.publish({ topics: "t", data: "first" });
    await nextTurn();
    await hub.publish({ topics: "t", data: "goodbye" });
    await hub.close();
    await consumer;
    assert.deepEqual(consumed, ["first", "goodbye"], "the in-process consumer gets both");
    const received = Buffer.concat(sink.chunks).toString();
    assert.match(received, /data: first\n\n(?:.|\n)*data: goodbye\n\nretry: \d+\n\n$/);
  });

  test("an in-process consumer backed up at its highWaterMark gets what was queued behind it at the close", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    const stream = hub.updates({ topics: ["a"], highWaterMark: 1 });
    await stream.earliest;
    for (let i = 1; i <= 5; i++) await hub.publish({ topics: "a", data: String(i) });
    await nextTurn();
    await hub.publish({ topics: "a", data: "6" });
    await hub.close();
    const got: string[] = [];
    for await (const update of stream) got.push(update.data);
    assert.deepEqual(got, ["1", "2", "3", "4", "5", "6"]);
  });

  test("ends a subscription once when its sink reports the peer gone while the close writes", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    const events: string[] = [];
    hub.on("disconnect", (_, reason) => events.push(`disconnect ${reason}`));
    let connection: { gone(): void } | undefined;
    const sink: Sink = {
      start() {},
      write(chunk) {
        if (String(chunk).includes("data:")) connection?.gone();
        return true;
      },
      end: () => events.push("end"),
      destroy: (reason) => events.push(`destroy ${reason}`),
    };
    connection = hub.connect(sink, { topics: ["a"] });
    await nextTurn();
    await hub.publish({ topics: "a", data: "x" });
    await hub.close();
    assert.deepEqual(events, ["end", "disconnect shutdown"]);
    assert.equal(hub.stats.subscribers, 0);
    assert.deepEqual(hub.stats.selectors, { exact: 0, template: 0, urlpattern: 0, any: 0 });
  });

  test("stores the publishes a disconnect listener makes while close() ends the streams", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    const stored: string[] = [];
    hub.on("publish", (update) => stored.push(update.data));
    hub.on("disconnect", (subscription, reason) => {
      void hub.publish({ topics: "presence", data: `${reason} ${subscription.topics[0]}` });
    });
    hub.connect(new KeepingSink(), { topics: ["a"] });
    await hub.close();
    assert.deepEqual(stored, ["shutdown a"]);
  });

  test("under the drop policy, drops past the bound, counts and reports it, and spares the others", async () => {
    const hub = createHub({ keepAliveMs: 0, queue: { maxEvents: 2, overflow: "drop" } });
    const slow = new BackedUpSink();
    const fast = new KeepingSink();
    const slowSubscription = hub.connect(slow, { topics: ["t"] });
    hub.connect(fast, { topics: ["t"] });
    const dropped: unknown[] = [];
    const disconnected: unknown[] = [];
    hub.on("drop", (subscription) => dropped.push(subscription));
    hub.on("disconnect", (subscription) => disconnected.push(subscription));
    for (let i = 0; i < 5; i++) {
      await hub.publish({ topics: "t", data: String(i) });
      await nextTurn(); // the fast subscriber's queue is written out each turn
    }
    assert.equal(hub.stats.dropped, 3);
    assert.deepEqual(dropped, [slowSubscription, slowSubscription, slowSubscription]);
    assert.deepEqual(disconnected, [], "the drop policy keeps the connection");
    assert.deepEqual(slowSubscription.queued, { events: 2, bytes: slowSubscription.queued.bytes });
    const delivered = Buffer.concat(fast.chunks).toString();
    assert.deepEqual(
      [...delivered.matchAll(/data: (\d)/g)].map((m) => m[1]),
      ["0", "1", "2", "3", "4"],
    );
    await hub.close();
  });

  test("refuses a queue bound or overflow policy it does not know, before anything starts", () => {
    for (const queue of [{ maxEvents: 0 }, { maxBytes: -1 }, { overflow: "block" }]) {
      assert.throws(
        () => createHub({ keepAliveMs: 0, queue: queue as never }),
        (err) => isCrierError(err, "CRIER_ERR_INVALID_OPTION"),
        JSON.stringify(queue),
      );
    }
  });
});

describe("an update larger than a subscriber's queue bound", () => {
  test("is refused at publish with CRIER_ERR_PAYLOAD_TOO_LARGE, and no subscriber is evicted", async () => {
    const hub = createHub({ keepAliveMs: 0, queue: { maxBytes: 1024 } });
    const sink = new KeepingSink();
    const subscription = hub.connect(sink, { topics: ["t"] });
    // 200 line breaks: 201 bytes of data, 1,415 bytes once each line is a `data: ` line.
    await assert.rejects(
      hub.publish({ topics: "t", data: "\n".repeat(200) }),
      (err) =>
        isCrierError(err, "CRIER_ERR_PAYLOAD_TOO_LARGE") &&
        /encodes to \d+ bytes/.test(err.message),
    );
    const fits = await hub.publish({ topics: "t", data: "\n".repeat(100) });
    await nextTurn();
    assert.equal(subscription.closed, false);
    assert.equal(hub.stats.evicted, 0);
    assert.equal(hub.stats.published, 1);
    assert.ok(Buffer.concat(sink.chunks).toString().includes(`id: ${fits.id}\n`));
    await hub.close();
  });
});

/** Records when it was ended and the last chunk written. */
class EndingSink extends KeepingSink {
  endedAt: number | undefined;
  override end() {
    this.endedAt = Date.now();
  }
}

describe("Hub counters and a spread close", () => {
  test("counts updates and bytes written per flush, keep-alives and the opening comment apart", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    const sinks = [new KeepingSink(), new KeepingSink()];
    hub.connect(sinks[0] as Sink, { topics: ["t"] });
    hub.connect(sinks[1] as Sink, { topics: ["{x}"] });
    await hub.publish({ topics: "t", data: "1" });
    await hub.publish({ topics: "t", data: "2" });
    await nextTurn();
    const written = sinks.flatMap((sink) => sink.chunks).reduce((n, c) => n + c.length, 0);
    assert.equal(hub.stats.delivered, 4);
    assert.equal(hub.stats.bytesWritten, written);
    assert.deepEqual(hub.stats.selectors, { exact: 1, template: 1, urlpattern: 0, any: 0 });
    assert.equal(await hub.historySize(), 2);
    assert.deepEqual(hub.queued, { events: 0, bytes: 0 });
    await hub.close();
    assert.deepEqual(hub.stats.disconnects, { shutdown: 2 });
    assert.deepEqual(hub.stats.selectors, { exact: 0, template: 0, urlpattern: 0, any: 0 });
  });

  test("stays open when close() is refused its options, so a later close() still closes", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    await assert.rejects(hub.close({ spreadMs: 2 ** 31 }), (err) =>
      isCrierError(err, "CRIER_ERR_INVALID_OPTION"),
    );
    assert.equal(hub.closing, false);
    await hub.close();
    assert.equal(hub.closing, true);
    await assert.rejects(hub.publish({ topics: "t", data: "x" }), (err) =>
      isCrierError(err, "CRIER_ERR_HUB_CLOSED"),
    );
  });

  test("closes all the way when a listener of its facts throws, and reports the errors", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    const sink = new EndingSink();
    hub.connect(sink, { topics: ["t"] });
    const errors: string[] = [];
    hub.on("error", (err) => errors.push(err.message));
    hub.on("publish", () => {
      throw new Error("publish listener");
    });
    hub.on("closing", () => {
      throw new Error("closing listener");
    });
    hub.on("disconnect", () => {
      throw new Error("disconnect listener");
    });
    // Before: publish rejected after storing, and close() rejected with the hub half closed.
    assert.equal((await hub.publish({ topics: "t", data: "x" })).data, "x");
    await hub.close();
    assert.notEqual(sink.endedAt, undefined);
    assert.equal(hub.stats.subscribers, 0);
    assert.deepEqual(errors, ["publish listener", "closing listener", "disconnect listener"]);
  });

  test("does not wait out spreadMs when there is no stream, or few, to end", async () => {
    const timeout = (ms: number) =>
      new Promise<string>((resolve) => setTimeout(resolve, ms, "waited").unref());
    const empty = createHub({ keepAliveMs: 0 });
    assert.equal(await Promise.race([empty.close({ spreadMs: 60_000 }), timeout(5000)]), undefined);
    const one = createHub({ keepAliveMs: 0 });
    const sink = new EndingSink();
    one.connect(sink, { topics: ["t"] });
    assert.equal(await Promise.race([one.close({ spreadMs: 60_000 }), timeout(5000)]), undefined);
    assert.notEqual(sink.endedAt, undefined);
  });

  test("ends the streams spread over spreadMs with jittered retry hints, refusing new ones meanwhile", async () => {
    const hub = createHub({ keepAliveMs: 0, closeRetryMs: 1000 });
    const sinks = Array.from({ length: 40 }, () => new EndingSink());
    for (const sink of sinks) hub.connect(sink, { topics: ["t"] });
    const started = Date.now();
    const closing = hub.close({ spreadMs: 400 });
    assert.equal(hub.closing, true);
    assert.throws(
      () => hub.connect(new KeepingSink(), { topics: ["t"] }),
      (err) => isCrierError(err, "CRIER_ERR_HUB_CLOSED"),
    );
    assert.equal((await hub.publish({ topics: "t", data: "still taken" })).data, "still taken");
    await closing;
    const ends = sinks.map((sink) => (sink.endedAt as number) - started);
    const early = ends.filter((ms) => ms < 200).length;
    assert.ok(early > 0 && early < 40, `${early} of 40 ended in the first half`);
    const retries = new Set(
      sinks.map((sink) => /retry: (\d+)/.exec(String(sink.chunks.at(-1)))?.[1]),
    );
    assert.ok(!retries.has(undefined), "every stream got a retry hint");
    for (const retry of retries) assert.ok(Number(retry) >= 1000 && Number(retry) <= 2000, retry);
    assert.ok(retries.size > 1, "the hints are jittered");
  });
});

// An app's own Sink (hub.connect) may throw from anywhere, also while it is being ended: from a
// keep-alive timer, a publish's fan-out or the hub's close. None of them may stop for it.
class ThrowingSink extends KeepingSink {
  constructor(
    readonly backedUp: boolean,
    readonly throwsOn: "destroy" | "end",
  ) {
    super();
  }
  override write(chunk: Buffer) {
    super.write(chunk);
    return !this.backedUp;
  }
  override end() {
    if (this.throwsOn === "end") throw new Error("end boom");
  }
  override destroy() {
    if (this.throwsOn === "destroy") throw new Error("destroy boom");
  }
}

describe("a Sink that throws while being ended", () => {
  test("dropped at a keep-alive tick: reported, and the process and the others go on", async () => {
    const hub = createHub({ keepAliveMs: 20 });
    const errors: Error[] = [];
    hub.on("error", (err) => errors.push(err));
    hub.connect(new ThrowingSink(true, "destroy"), { topics: ["t"] });
    const good = new KeepingSink();
    hub.connect(good, { topics: ["t"] });
    await until(() => errors.length > 0, "the stalled sink to be dropped");
    assert.equal(errors[0]?.message, "destroy boom");
    await hub.publish({ topics: "t", data: "after" });
    await until(() => good.chunks.some((c) => c.includes("after")), "the good sink's update");
    assert.equal(hub.stats.subscribers, 1);
    await hub.close();
  });

  test("dropped at its queue bound during a publish: the publish resolves and the others get it", async () => {
    const hub = createHub({ keepAliveMs: 0, queue: { maxEvents: 2 } });
    const errors: Error[] = [];
    hub.on("error", (err) => errors.push(err));
    hub.connect(new ThrowingSink(true, "destroy"), { topics: ["t"] });
    const good = new KeepingSink();
    hub.connect(good, { topics: ["t"] });
    for (let i = 0; i < 5; i++) {
      await hub.publish({ topics: "t", data: `u${i}` });
      await nextTurn();
    }
    assert.deepEqual(
      errors.map((e) => e.message),
      ["destroy boom"],
    );
    for (let i = 0; i < 5; i++)
      assert.ok(
        good.chunks.some((c) => c.includes(`u${i}`)),
        `u${i}`,
      );
    await hub.close();
  });

  test("ended by hub.close(): close resolves, the others are ended, publishes are refused", async () => {
    const hub = createHub({ keepAliveMs: 0 });
    const errors: Error[] = [];
    hub.on("error", (err) => errors.push(err));
    hub.connect(new ThrowingSink(false, "end"), { topics: ["t"] });
    const other = new EndingSink();
    hub.connect(other, { topics: ["t"] });
    await hub.close();
    assert.notEqual(other.endedAt, undefined);
    assert.deepEqual(
      errors.map((e) => e.message),
      ["end boom"],
    );
    await assert.rejects(hub.publish({ topics: "t", data: "late" }), (err) =>
      isCrierError(err, "CRIER_ERR_HUB_CLOSED"),
    );
  });
});
