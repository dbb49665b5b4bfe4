import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { concatFrames, type Frame } from "../src/frame.ts";
import { MemoryHistory } from "../src/history/memory.ts";
import {
  type CloseReason,
  type Sink,
  STALLED_TICKS,
  Subscriber,
  type SubscriberHost,
} from "../src/subscriber.ts";
import { validateUpdate } from "../src/update.ts";

/** A sink that records writes and reports backpressure on demand (no socket needed here). */
class RecordingSink implements Sink {
  writes: string[] = [];
  headers: Record<string, string> | undefined;
  full = false;
  ended = false;
  destroyed = false;
  start(headers: Readonly<Record<string, string>>) {
    this.headers = { ...headers };
  }
  write(chunk: Buffer) {
    this.writes.push(chunk.toString());
    return !this.full;
  }
  end() {
    this.ended = true;
  }
  destroy() {
    this.destroyed = true;
  }
}

class Host implements SubscriberHost {
  scheduled: Subscriber[] = [];
  closes: CloseReason[] = [];
  drops = 0;
  written = { events: 0, bytes: 0 };
  schedule(s: Subscriber) {
    s.scheduled = true;
    this.scheduled.push(s);
  }
  dropped() {
    this.drops++;
  }
  join(frames: readonly Frame[], bytes: number) {
    return concatFrames(frames, bytes);
  }
  closed(_: Subscriber, reason: CloseReason) {
    this.closes.push(reason);
  }
  failures: unknown[] = [];
  failed(err: unknown) {
    this.failures.push(err);
  }
  run() {
    const list = this.scheduled;
    this.scheduled = [];
    for (const s of list) {
      s.scheduled = false;
      s.flush();
    }
  }
}

const history = new MemoryHistory();
const update = (data: string, extra: { private?: boolean; topics?: string[] } = {}) =>
  history.append(validateUpdate({ topics: extra.topics ?? ["t"], data, private: extra.private }));

function setup(queue = {}) {
  const sink = new RecordingSink();
  const host = new Host();
  const sub = new Subscriber(sink, host, { topics: ["t"] }, queue);
  return { sink, host, sub };
}

describe("Subscriber", () => {
  test("opens with its headers and a comment, then writes all queued updates in one write", () => {
    const { sink, host, sub } = setup();
    sub.open({ "Content-Type": "text/event-stream" }, []);
    assert.deepEqual(sink.writes, [":\n"]);
    const a = update("a");
    const b = update("b");
    sub.offer(a);
    sub.offer(b);
    assert.equal(host.scheduled.length, 1, "scheduled once per turn");
    host.run();
    assert.deepEqual(sink.writes, [":\n", a.bytes.toString() + b.bytes.toString()]);
  });

  test("queues updates offered before it opens, behind the replay, without repeating replayed ones", () => {
    const { sink, sub } = setup();
    const a = update("a");
    const b = update("b");
    const c = update("c");
    sub.offer(b); // live delivery raced the replay: b arrives both ways
    sub.offer(c);
    sub.open({}, [a, b]);
    assert.deepEqual(sink.writes.join(""), `:\n${a.bytes}${b.bytes}${c.bytes}`);
  });

  test("writes nothing while the sink is backed up, then resumes in order on drain", () => {
    const { sink, host, sub } = setup();
    sub.open({}, []);
    sink.full = true;
    sub.offer(update("1"));
    host.run();
    const n = sink.writes.length;
    sub.offer(update("2"));
    sub.offer(update("3"));
    host.run();
    assert.equal(sink.writes.length, n, "no write while backed up");
    assert.equal(sub.queued.events, 2);
    sink.full = false;
    sub.drained();
    assert.equal(sink.writes.length, n + 1);
    assert.match(sink.writes.at(-1) as string, /data: 2\n\n.*data: 3\n\n/s);
  });

  test("disconnects at maxEvents by default, discarding its queue", () => {
    const { sink, host, sub } = setup({ maxEvents: 3 });
    sub.open({}, []);
    sink.full = true;
    sub.offer(update("first")); // goes to the sink, which then reports backpressure
    host.run();
    for (let i = 0; i < 3; i++) sub.offer(update(String(i)));
    assert.equal(sub.queued.events, 3);
    assert.equal(sub.closed, false);
    sub.offer(update("overflow"));
    assert.equal(sub.closed, true);
    assert.equal(sink.destroyed, true);
    assert.deepEqual(host.closes, ["overflow"]);
    assert.equal(sub.queued.events, 0);
  });

  test("disconnects before its queued bytes would pass maxBytes", () => {
    const one = update("x".repeat(50));
    const { sink, sub } = setup({ maxBytes: one.bytes.length * 2 });
    sub.open({}, []);
    sink.full = true;
    sub.offer(one);
    sub.flush();
    sub.offer(one);
    sub.offer(one);
    assert.ok(sub.queued.bytes <= one.bytes.length * 2);
    sub.offer(one);
    assert.equal(sub.closed, true);
  });

  test("under the drop policy, drops the new update and stays connected", () => {
    const { sink, host, sub } = setup({ maxEvents: 1, overflow: "drop" });
    sub.open({}, []);
    sink.full = true;
    sub.offer(update("a"));
    host.run();
    sub.offer(update("b"));
    sub.offer(update("c"));
    assert.equal(sub.closed, false);
    assert.equal(host.drops, 1);
  });

  test("refuses private updates unless a claim covers one of their topics", () => {
    const { sub } = setup();
    const authorized = new Subscriber(new RecordingSink(), new Host(), {
      topics: ["t"],
      authorized: ["u"],
    });
    const priv = update("p", { private: true, topics: ["t", "u"] });
    assert.equal(sub.isDenied(priv), true);
    assert.equal(authorized.isDenied(priv), false);
    assert.equal(sub.isDenied(update("public")), false);
  });

  test("drops a connection that stays backed up for STALLED_TICKS keep-alive intervals", () => {
    const { sink, host, sub } = setup();
    sub.open({}, []);
    sink.full = true;
    sub.offer(update("fills the socket"));
    host.run();
    const keepAlive = { bytes: Buffer.from(":\n") };
    for (let i = 1; i < STALLED_TICKS; i++) sub.tick(keepAlive);
    assert.equal(sub.closed, false);
    sub.tick(keepAlive);
    assert.equal(sub.closed, true);
    assert.equal(sink.destroyed, true);
    assert.deepEqual(host.closes, ["stalled"]);
  });

  test("a connection that drains between keep-alives is never counted as stalled", () => {
    const { sink, host, sub } = setup();
    sub.open({}, []);
    const keepAlive = { bytes: Buffer.from(":\n") };
    for (let i = 0; i < STALLED_TICKS * 3; i++) {
      sink.full = true;
      sub.offer(update(String(i)));
      host.run();
      sub.tick(keepAlive);
      sink.full = false;
      sub.drained();
    }
    assert.equal(sub.closed, false);
  });

  test("drops rather than ends a backed-up connection, so a client that stopped reading lets go", () => {
    const { sink, host, sub } = setup();
    sub.open({}, []);
    sink.full = true;
    sub.offer(update("x"));
    host.run();
    sub.close("closed");
    assert.equal(sink.destroyed, true);
    assert.equal(sink.ended, false);
  });

  test("close is idempotent and ends gracefully with a final frame on shutdown", () => {
    const { sink, host, sub } = setup();
    sub.open({}, []);
    sub.close("shutdown", Buffer.from("retry: 1000\n\n"));
    sub.close("shutdown");
    assert.equal(sink.ended, true);
    assert.equal(sink.destroyed, false);
    assert.equal(sink.writes.at(-1), "retry: 1000\n\n");
    assert.deepEqual(host.closes, ["shutdown"]);
  });
});
