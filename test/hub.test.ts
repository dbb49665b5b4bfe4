import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setImmediate as nextTurn } from "node:timers/promises";
import { createHub } from "../src/hub.ts";
import type { Sink } from "../src/subscriber.ts";

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
