import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import fc from "fast-check";
import { encodeComment, encodedLength, encodeEvent, encodeRetry } from "../src/encoder.ts";
import { isCrierError } from "../src/errors.ts";

const wire = (buf: Buffer) => buf.toString("utf8");

describe("encodeEvent", () => {
  test("gives each event an allocation of its own, so a kept event never pins Node's shared buffer pool", () => {
    for (const data of ["x", "é".repeat(100), "y".repeat(5000)]) {
      Buffer.from("a small pooled allocation before it");
      const bytes = encodeEvent({ id: "1", data });
      assert.equal(bytes.byteOffset, 0);
      assert.equal(bytes.buffer.byteLength, bytes.length, "exactly the event's bytes");
      assert.equal(wire(bytes), `id: 1\ndata: ${data}\n\n`);
    }
  });

  test("writes id, event, retry and data lines in that order, ended by a blank line", () => {
    assert.equal(
      wire(encodeEvent({ id: "42", type: "update", retry: 3000, data: "hello" })),
      "id: 42\nevent: update\nretry: 3000\ndata: hello\n\n",
    );
  });

  test("writes an empty data line when there is no data, so the event still dispatches", () => {
    assert.equal(wire(encodeEvent({ id: "1" })), "id: 1\ndata: \n\n");
  });

  test("splits data on CRLF, CR and LF, keeping blank lines and leading spaces", () => {
    assert.equal(
      wire(encodeEvent({ data: "a\r\nb\rc\nd\n\n  e" })),
      "data: a\ndata: b\ndata: c\ndata: d\ndata: \ndata:   e\n\n",
    );
  });

  test("keeps a leading space of id and type", () => {
    assert.equal(wire(encodeEvent({ id: " x", type: " t" })), "id:  x\nevent:  t\ndata: \n\n");
  });

  for (const bad of ["a\nb", "a\rb", "a\0b"]) {
    test(`refuses an id or type containing ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => encodeEvent({ id: bad }),
        (err) => isCrierError(err, "CRIER_ERR_INVALID_EVENT"),
      );
      assert.throws(
        () => encodeEvent({ type: bad }),
        (err) => isCrierError(err, "CRIER_ERR_INVALID_EVENT"),
      );
    });
  }

  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    test(`refuses retry ${bad}`, () => {
      assert.throws(
        () => encodeEvent({ retry: bad }),
        (err) => isCrierError(err, "CRIER_ERR_INVALID_EVENT"),
      );
    });
  }
});

describe("comments and retry hints", () => {
  test("the empty comment is a lone colon", () => {
    assert.equal(wire(encodeComment()), ":\n");
  });

  test("multi-line comments become one comment line each", () => {
    assert.equal(wire(encodeComment("a\nb\r\n\rc")), ": a\n: b\n:\n: c\n");
  });

  test("a retry hint dispatches nothing", () => {
    assert.equal(wire(encodeRetry(1000)), "retry: 1000\n\n");
  });
});

describe("round trip through eventsource-parser", () => {
  const noBreak = fc.string({ unit: "grapheme" }).filter((s) => !/[\r\n\0]/.test(s));
  const event = fc.record(
    {
      id: noBreak,
      type: noBreak.filter((s) => s !== ""),
      data: fc.string({
        unit: fc.oneof(
          fc.constantFrom("\r", "\n", "\r\n", " ", ":"),
          fc.string({ unit: "grapheme", maxLength: 1 }),
        ),
      }),
      retry: fc.nat(),
    },
    { requiredKeys: ["data"] },
  );

  test("every valid event parses back to itself, whatever the chunk boundaries", () => {
    fc.assert(
      fc.property(event, fc.array(fc.nat(), { maxLength: 8 }), (ev, cuts) => {
        const bytes = encodeEvent(ev);
        const parsed: EventSourceMessage[] = [];
        let retry: number | undefined;
        const parser = createParser({
          onEvent: (e) => parsed.push(e),
          onRetry: (r) => (retry = r),
        });
        const text = wire(bytes);
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        let last = 0;
        for (const p of [...points, text.length]) {
          parser.feed(text.slice(last, p));
          last = p;
        }
        assert.equal(parsed.length, 1);
        const got = parsed[0] as EventSourceMessage;
        // SSE carries lines, not line-break characters: every break arrives as LF.
        assert.equal(got.data, ev.data.replace(/\r\n|\r/g, "\n"));
        assert.equal(got.id, ev.id);
        assert.equal(got.event, ev.type);
        assert.equal(retry, ev.retry);
      }),
      { numRuns: 2000 },
    );
  });

  test("encodedLength is the length of the encoded event, without building it", () => {
    fc.assert(
      fc.property(event, (ev) => {
        assert.equal(encodedLength(ev), encodeEvent(ev).length);
      }),
      { numRuns: 2000 },
    );
  });
});
