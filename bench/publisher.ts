/**
 * The publishing side of a load run: Mercure `POST /.well-known/mercure` requests on K
 * keep-alive connections ("lanes"), either flooding (every lane sends its next update as soon as
 * the previous one is answered) or at a fixed rate. Each update's data is
 * `<seq>:<hrtime ns>:<padding>` so a subscriber can verify it and time it.
 */
import { createHmac } from "node:crypto";
import http from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { Histogram, type LatencySummary } from "./stats.ts";

/**
 * An HS256 JWT allowing publication on every topic (`{"mercure":{"publish":["*"]}}`), signed
 * with node:crypto so the bench needs no JWT library.
 */
export function publisherJwt(secret: string): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString("base64url");
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ mercure: { publish: ["*"] } })}`;
  const sig = createHmac("sha256", secret).update(unsigned).digest("base64url");
  return `${unsigned}.${sig}`;
}

/** What one publishing phase achieved. */
export interface PublishStats {
  /** Requests answered 200: the hub accepted the update. */
  accepted: number;
  /** Requests that failed (status ≠ 200, socket error, 10 s timeout). */
  failed: number;
  /** Why they failed: `status 503`, `ECONNRESET`, … with counts. */
  failures: Record<string, number>;
  /** Rate mode: ticks skipped because all lanes were still waiting for the hub. */
  missedSlots: number;
  /** Wall time of the phase, ms. */
  ms: number;
  /** POST round-trip time (the hub's publish latency as a publisher sees it). */
  requestMs: LatencySummary;
}

/** Publishes numbered updates of a fixed size to one topic; see the module comment. */
export class Publisher {
  readonly #agent: http.Agent;
  readonly #next: number[];
  readonly #busy: boolean[];
  #accepted = 0;
  #failed = 0;
  #failures: Record<string, number> = {};
  #rtt = new Histogram();
  // hrtime (ns) at which each seq's 200 arrived; 0 while unanswered. Seqs past the end: not kept.
  readonly #acceptedNs: Float64Array;

  constructor(
    readonly host: string,
    readonly port: number,
    readonly topic: string,
    readonly token: string,
    readonly lanes: number,
    /** Bytes of `data` per update, padding included. */
    readonly dataBytes = 128,
    /** Where the answers' times go: shared with another thread, or this publisher's own. */
    accepted: ArrayBufferLike = new ArrayBuffer(8 << 20),
    /** Post the data itself as the body (nchan), not a Mercure form. */
    readonly raw = false,
  ) {
    this.#acceptedNs = new Float64Array(accepted);
    // maxSockets = lanes: each lane owns one keep-alive connection, requests never queue.
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: lanes });
    this.#next = Array.from({ length: lanes }, (_, l) => l);
    this.#busy = Array.from({ length: lanes }, () => false);
  }

  /** Sends up to `maxEvents` as fast as the hub answers, for at most `durationMs`. */
  async flood(maxEvents: number, durationMs: number): Promise<PublishStats> {
    const t0 = this.#begin();
    const deadline = t0 + durationMs;
    let sent = 0;
    const lane = async (l: number): Promise<void> => {
      while (sent < maxEvents && performance.now() < deadline) {
        sent++;
        await this.#send(l);
      }
    };
    await Promise.all(Array.from({ length: this.lanes }, (_, l) => lane(l)));
    return this.#end(t0, 0);
  }

  /** Starts one update every 1/`perSec` s for `durationMs`, on whichever lane is free. */
  async rate(perSec: number, durationMs: number): Promise<PublishStats> {
    const t0 = this.#begin();
    const period = 1000 / perSec;
    const pending: Promise<void>[] = [];
    let missed = 0;
    for (let i = 0; i * period < durationMs; i++) {
      // Schedule against the start time so timer drift does not lower the rate.
      const wait = t0 + i * period - performance.now();
      if (wait > 0) await sleep(wait);
      const l = this.#busy.indexOf(false);
      if (l === -1) missed++;
      else pending.push(this.#send(l));
    }
    await Promise.all(pending);
    return this.#end(t0, missed);
  }

  /**
   * When the hub's 200 for `seq` reached the publisher (hrtime ns), or 0 when it has not (yet):
   * a delivery that arrives before its publish is answered counts from the answer as 0.
   */
  acceptedNs(seq: number): number {
    return this.#acceptedNs[seq] ?? 0;
  }

  /** Closes the keep-alive connections. */
  close(): void {
    this.#agent.destroy();
  }

  #begin(): number {
    this.#accepted = 0;
    this.#failed = 0;
    this.#failures = {};
    this.#rtt = new Histogram();
    return performance.now();
  }

  #end(t0: number, missedSlots: number): PublishStats {
    const ms = Math.round(performance.now() - t0);
    const requestMs = this.#rtt.summary();
    const [accepted, failed, failures] = [this.#accepted, this.#failed, this.#failures];
    return { accepted, failed, failures, missedSlots, ms, requestMs };
  }

  /** One POST on lane `l`; resolves when answered (never rejects). */
  #send(l: number): Promise<void> {
    const seq = this.#next[l] ?? l;
    this.#next[l] = seq + this.lanes;
    this.#busy[l] = true;
    const t0 = performance.now();
    const head = `${seq}:${process.hrtime.bigint()}:`;
    const data = head + "x".repeat(Math.max(0, this.dataBytes - head.length));
    const body = this.raw
      ? data
      : `topic=${encodeURIComponent(this.topic)}&data=${encodeURIComponent(data)}`;
    const post = postUpdate(this.#agent, this.host, this.port, this.token, body, this.raw);
    return post.then((why) => {
      this.#busy[l] = false;
      if (why === null) {
        this.#accepted++;
        if (seq < this.#acceptedNs.length) this.#acceptedNs[seq] = Number(process.hrtime.bigint());
      } else {
        this.#failed++;
        this.#failures[why] = (this.#failures[why] ?? 0) + 1;
      }
      this.#rtt.record((performance.now() - t0) * 1000);
    });
  }
}

/**
 * One publish (a form body) to crier at `host:port`: resolves with `null` when answered 200, else
 * with why not (`status 503`, `ECONNRESET`, `timeout`, …); never rejects. `raw`: the body is the
 * data itself, as nchan takes it, and any 2xx is an answer (nchan's 201 or 202).
 */
export function postUpdate(
  agent: http.Agent,
  host: string,
  port: number,
  token: string,
  body: string,
  raw = false,
): Promise<string | null> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (why: string | null): void => {
      if (settled) return;
      settled = true;
      resolve(why);
    };
    const req = http.request({
      agent,
      host,
      port,
      method: "POST",
      path: "/.well-known/mercure",
      timeout: 10_000,
      headers: raw
        ? { "content-type": "text/plain", "content-length": Buffer.byteLength(body) }
        : {
            "content-type": "application/x-www-form-urlencoded",
            "content-length": Buffer.byteLength(body),
            authorization: `Bearer ${token}`,
          },
    });
    req.on("response", (res) => {
      const status = res.statusCode ?? 0;
      const ok = raw ? status >= 200 && status < 300 : status === 200;
      res.resume();
      res.on("end", () => done(ok ? null : `status ${status}`));
      res.on("error", () => done("response error"));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    req.end(body);
  });
}
