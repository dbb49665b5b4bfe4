/**
 * A raw-socket SSE subscriber built to consume more events per second than a one-core hub can
 * produce. No HTTP client library: it parses the status line, skips the headers, undoes the
 * chunked framing in place and looks only at `data:` lines. Reads land in one shared buffer
 * (`onread`), so a read allocates nothing, and events are parsed straight out of that buffer.
 */
import net from "node:net";

/** What a subscription reports; `sub` is the subscriber's index. */
export interface SubscriberSink {
  /** The first body bytes arrived (the hub's opening `:` comment): the subscription is live. */
  ready(sub: number): void;
  /** One `data: <seq>:<sentNs>:…` line; `recvNs` is the hrtime of the read that carried it. */
  event(sub: number, seq: number, sentNs: number, recvNs: number): void;
  /** A `data:` line that did not start with `<seq>:<ns>:`. */
  malformed(sub: number): void;
  /** The connection ended (error, close, non-200 status); `why` is for the report. */
  closed(sub: number, why: string): void;
}

const LF = 10;
const CR = 13;
const COLON = 58;
const HEAD = 0;
const SIZE = 1;
const DATA = 2;
const TRAILER = 3;
const RAW = 4;
const DONE = 5;
/** Only the first bytes of a line matter (`data: <seq>:<ns>:`), so a split line keeps these. */
const CARRY = 64;

/**
 * One kernel read at a time is processed synchronously, so every socket can share one buffer.
 * 256 KiB lets a backed-up socket drain in few reads. It starts filled with LF so that
 * `indexOf(LF)` near the end of a read stops at once instead of scanning stale bytes.
 */
const shared = Buffer.alloc(256 * 1024, LF);

/** Parser state for one connection: HTTP head → chunk size → chunk data → CRLF → … */
class Stream {
  state = HEAD;
  head: Buffer | null = null;
  chunkLeft = 0;
  size = 0;
  sizeEnded = false;
  readonly carry = Buffer.allocUnsafe(CARRY);
  carryLen = 0;
  isReady = false;

  constructor(
    readonly sub: number,
    readonly sink: SubscriberSink,
  ) {}

  /** Consumes `buf[0, n)`; returns a reason to close, or null. */
  feed(buf: Buffer, n: number, now: number): string | null {
    let i = 0;
    while (i < n) {
      if (this.state === DATA) {
        const end = Math.min(n, i + this.chunkLeft);
        this.body(buf, i, end, now);
        this.chunkLeft -= end - i;
        i = end;
        if (this.chunkLeft === 0) this.state = TRAILER;
      } else if (this.state === SIZE) {
        const c = buf[i++] ?? 0;
        if (c === LF) {
          if (this.size === 0) return "stream ended";
          this.chunkLeft = this.size;
          this.size = 0;
          this.sizeEnded = false;
          this.state = DATA;
        } else if (!this.sizeEnded) {
          const d = c <= 57 ? c - 48 : (c | 32) - 87; // hex digit; anything else ends the size
          if (d >= 0 && d < 16 && c !== CR) this.size = this.size * 16 + d;
          else this.sizeEnded = true;
        }
      } else if (this.state === TRAILER) {
        if (buf[i++] === LF) this.state = SIZE;
      } else if (this.state === RAW) {
        this.body(buf, i, n, now);
        i = n;
      } else if (this.state === HEAD) {
        const r = this.readHead(buf, i, n);
        if (typeof r === "string") return r;
        i = r;
      } else return null;
    }
    return null;
  }

  /** Accumulates the response head (rare path, may allocate); returns where the body starts. */
  readHead(buf: Buffer, i: number, n: number): number | string {
    const prev = this.head ?? Buffer.alloc(0);
    const all = Buffer.concat([prev, buf.subarray(i, n)]);
    const end = all.indexOf("\r\n\r\n");
    if (end === -1) {
      this.head = all;
      return all.length > 16384 ? "response head too large" : n;
    }
    const text = all.toString("latin1", 0, end);
    this.head = null;
    const status = text.slice(9, 12);
    if (status !== "200") return `status ${status}`;
    this.state = /\r\ntransfer-encoding:[ \t]*chunked/i.test(text) ? SIZE : RAW;
    return i + end + 4 - prev.length;
  }

  /** Splits body bytes `buf[s, e)` into lines; a line cut by a read or a chunk is carried. */
  body(buf: Buffer, s: number, e: number, now: number): void {
    if (!this.isReady && e > s) {
      this.isReady = true;
      this.sink.ready(this.sub);
    }
    let p = s;
    while (p < e) {
      const nl = buf.indexOf(LF, p);
      if (nl === -1 || nl >= e) {
        this.stash(buf, p, e);
        return;
      }
      if (this.carryLen > 0) {
        this.stash(buf, p, nl);
        this.line(this.carry, 0, this.carryLen, now);
        this.carryLen = 0;
      } else this.line(buf, p, nl, now);
      p = nl + 1;
    }
  }

  stash(buf: Buffer, s: number, e: number): void {
    const take = Math.min(e - s, CARRY - this.carryLen);
    if (take > 0) buf.copy(this.carry, this.carryLen, s, s + take);
    this.carryLen += take;
  }

  /** Handles one line without its LF; only `data:` lines are parsed, the rest skipped. */
  line(b: Buffer, s: number, e: number, now: number): void {
    if (e - s < 6 || b[s] !== 100 || b[s + 1] !== 97 || b[s + 2] !== 116) return;
    if (b[s + 3] !== 97 || b[s + 4] !== COLON) return;
    let p = b[s + 5] === 32 ? s + 6 : s + 5; // [spec] one leading space after the colon is dropped
    const seqStart = p;
    let seq = 0;
    for (let c = b[p] ?? 0; p < e && c >= 48 && c <= 57; c = b[++p] ?? 0) seq = seq * 10 + c - 48;
    if (p === seqStart || p >= e || b[p] !== COLON) {
      this.sink.malformed(this.sub);
      return;
    }
    const nsStart = ++p;
    let ns = 0;
    // Digits are accumulated into a double: above 2^53 ns of uptime it rounds to a few ns.
    for (let c = b[p] ?? 0; p < e && c >= 48 && c <= 57; c = b[++p] ?? 0) ns = ns * 10 + c - 48;
    if (p === nsStart) this.sink.malformed(this.sub);
    else this.sink.event(this.sub, seq, ns, now);
  }
}

/**
 * Opens subscription `sub` to `http://host:port/path` and reports through `sink`. Returns the
 * socket so the caller can destroy it; `closed` is reported exactly once.
 */
export function subscribe(
  sub: number,
  host: string,
  port: number,
  path: string,
  sink: SubscriberSink,
): net.Socket {
  const stream = new Stream(sub, sink);
  let done = false;
  const finish = (why: string): void => {
    if (done) return;
    done = true;
    stream.state = DONE;
    sink.closed(sub, why);
  };
  const socket = net.connect({
    host,
    port,
    onread: {
      buffer: shared,
      callback: (n: number): boolean => {
        // One clock read per kernel read: every event in it arrived at the same time.
        const why = stream.feed(shared, n, Number(process.hrtime.bigint()));
        if (why !== null) {
          finish(why);
          socket.destroy();
        }
        return true;
      },
    },
  });
  socket.write(
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nAccept: text/event-stream\r\n\r\n`,
  );
  socket.on("error", (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
  socket.on("end", () => finish("server closed"));
  socket.on("close", () => finish("closed"));
  return socket;
}
