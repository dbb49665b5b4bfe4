import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { OwnUpdates } from "../src/backplane/own-updates.ts";

const own = (max?: number, maxBytes?: number) =>
  new OwnUpdates<number, string>(
    (a, b) => a < b,
    (v) => v.length,
    max,
    maxBytes,
  );

describe("a node's own updates, kept for its reader", () => {
  test("gives back the update kept at a position, once", () => {
    const kept = own();
    kept.add(3, "three");
    assert.equal(kept.take(3), "three");
    assert.equal(kept.take(3), undefined);
    assert.equal(kept.size, 0);
  });

  test("drops what the reader has passed: taking a position removes every entry before it", () => {
    const kept = own();
    kept.add(2, "two");
    kept.add(5, "five");
    kept.add(9, "nine");
    assert.equal(kept.take(4), undefined);
    assert.equal(kept.size, 2);
    assert.equal(kept.take(9), "nine");
    assert.equal(kept.size, 0);
  });

  test("keeps nothing past its bounds on entries and bytes, and clear empties it", () => {
    const byCount = own(2);
    for (const p of [1, 2, 3]) byCount.add(p, `${p}`);
    assert.equal(byCount.size, 2);
    assert.equal(byCount.take(3), undefined);
    const byBytes = own(100, 8);
    byBytes.add(1, "12345");
    byBytes.add(2, "6789");
    assert.equal(byBytes.size, 1);
    // Bytes taken out are free again.
    assert.equal(byBytes.take(1), "12345");
    byBytes.add(2, "6789");
    assert.equal(byBytes.size, 1);
    byBytes.clear();
    assert.equal(byBytes.size, 0);
  });
});
