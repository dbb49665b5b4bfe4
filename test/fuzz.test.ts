/**
 * Random request lines, headers, query strings and bodies on every route, over raw sockets: the
 * hub answers each with a status below 500 and keeps serving. The seed is printed, so a failure
 * replays with FUZZ_SEED=<seed>; FUZZ_RUNS sets the number of runs (10,000 by default).
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { mintToken } from "../src/mercure/index.ts";
import { SECRET, startHub, type TestHub } from "./helpers.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

/** Sends one request and resolves with the status of the answer (0: the hub closed at once). */
function exchange(port: number, bytes: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let head = "";
    const done = (status: number) => {
      socket.destroy();
      resolve(status);
    };
    socket.setTimeout(5000, () => done(-1));
    socket.on("error", () => done(Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)));
    socket.on("close", () => done(Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)));
    socket.on("data", (chunk: Buffer) => {
      head += chunk.toString("latin1");
      // The status line is all that is judged; an event stream never ends by itself.
      const match = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (match !== null) done(Number(match[1]));
    });
    socket.end(bytes);
  });
}

// Printable ASCII, the odd byte above it, and the characters that matter to parsers.
const text = fc.string({
  unit: fc.oneof(
    { weight: 8, arbitrary: fc.string({ minLength: 1, maxLength: 1 }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        "%",
        "%00",
        "%ZZ",
        "%E2%80%AE",
        "{",
        "}",
        "*",
        ":",
        "/",
        "?",
        "#",
        "&",
        "=",
        "[",
        "]",
        "@",
        "\u00e9",
        "\u0085",
        "\u200b",
        "..",
        "//",
      ),
    },
  ),
  maxLength: 40,
});
const method = fc.oneof(
  fc.constantFrom("GET", "POST", "OPTIONS", "HEAD", "PUT", "DELETE", "PATCH"),
  fc.stringMatching(/^[A-Z]{1,8}$/),
);
const path = fc.oneof(
  { weight: 12, arbitrary: fc.constant("/.well-known/mercure") },
  fc.constantFrom(
    "/.well-known/mercure",
    "/.well-known/mercure/subscriptions",
    "/.well-known/mercure/subscriptions/",
    "/healthz",
    "/",
    "//",
    "*",
  ),
  text.map((t) => `/.well-known/mercure/subscriptions/${encodeURI(t)}`),
  text.map((t) => `/${encodeURI(t)}`),
  text.map((t) => `http://${encodeURI(t)}/.well-known/mercure`),
  text,
);
const paramName = fc.oneof(
  { weight: 2, arbitrary: text.map(encodeURIComponent) },
  { weight: 1, arbitrary: text },
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      "topic",
      "match",
      "match_urlpattern",
      "matchURLPattern",
      "match_exact",
      "lastEventID",
      "last_event_id",
      "authorization",
      "access_token",
      "matchZ",
    ),
  },
);
// Mostly well-formed (percent-encoded) so requests reach the handlers; sometimes raw.
const queryValue = fc.oneof({ weight: 9, arbitrary: text.map(encodeURIComponent) }, text);
const query = fc.array(fc.tuple(paramName, queryValue), { maxLength: 5 });
// A header value node:http accepts (visible ASCII and spaces), or anything.
const headerValue = fc.oneof(
  { weight: 19, arbitrary: fc.stringMatching(/^[\x21-\x7e][\x20-\x7e]{0,40}$/) },
  text,
);

describe("fuzzing every route", { timeout: 600_000 }, () => {
  let t: TestHub;
  let tokens: string[];
  before(async () => {
    t = await startHub(
      { keepAliveMs: 0 },
      { subscriptions: true, authorizationQuery: true, maxBodyBytes: 4096 },
    );
    tokens = [
      await mintToken(SECRET, { publish: ["*"], subscribe: ["*"] }),
      await mintToken(SECRET, { publish: ["https://example.com/{x}"] }),
    ];
  });
  after(() => t.close());

  test(`answers ${RUNS} random requests below 500 and keeps serving (seed ${SEED})`, async () => {
    console.log(`fuzz seed ${SEED} (replay: FUZZ_SEED=${SEED})`);
    const header = fc.oneof(
      fc.tuple(fc.constant("Host"), fc.oneof(fc.constant(`127.0.0.1:${t.port}`), headerValue)),
      fc.tuple(
        fc.constant("Authorization"),
        fc.oneof(fc.constantFrom(...tokens.map((k) => `Bearer ${k}`)), headerValue),
      ),
      fc.tuple(
        fc.constant("Cookie"),
        fc.oneof(fc.constantFrom(...tokens.map((k) => `mercureAuthorization=${k}`)), headerValue),
      ),
      fc.tuple(
        fc.constantFrom("Last-Event-ID", "Origin", "Referer", "Content-Type", "Accept"),
        headerValue,
      ),
      fc.tuple(
        fc.oneof({ weight: 9, arbitrary: fc.stringMatching(/^[A-Za-z-]{1,12}$/) }, text),
        headerValue,
      ),
    );
    const body = fc.oneof(
      fc.constant(""),
      fc
        .array(fc.tuple(fc.constantFrom("topic", "data", "id", "type", "retry", "private"), text), {
          maxLength: 6,
        })
        .map((fields) => fields.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&")),
      text,
    );
    const request = fc.record({
      method,
      path,
      query,
      headers: fc.array(header, { maxLength: 6 }),
      body,
      form: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const qs = r.query.map(([k, v]) => `${k}=${v}`).join("&");
        const target = qs === "" ? r.path : `${r.path}?${qs}`;
        const lines = [`${r.method} ${target} HTTP/1.1`];
        if (!r.headers.some(([name]) => name.toLowerCase() === "host"))
          lines.push("Host: localhost");
        for (const [name, value] of r.headers) lines.push(`${name}: ${value}`);
        if (r.form) lines.push("Content-Type: application/x-www-form-urlencoded");
        const payload = Buffer.from(r.body, "utf8");
        lines.push(`Content-Length: ${payload.length}`, "", "");
        const status = await exchange(
          t.port,
          Buffer.concat([Buffer.from(lines.join("\r\n"), "latin1"), payload]),
        );
        assert.ok(status < 500, `answered ${status} to ${JSON.stringify(lines[0])}`);
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    const health = await fetch(`http://127.0.0.1:${t.port}/healthz`);
    assert.equal(health.status, 200);
  });
});
