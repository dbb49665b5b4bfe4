/**
 * A raw-socket SSE subscriber that remembers its last event id and resumes with it, for the
 * `resume-storm` and `soak` scenarios. It reads the hub's close-delimited stream (the standalone
 * hub takes the socket over after the head), looks only at the first bytes of each line (`id:`
 * and the `<seq>:` that starts `data:`) and checks, across its connections, that sequence
 * numbers only grow.
 */
import net from "node:net";

const LF = 10;
/** Only the first bytes of a line matter: an id, or the sequence number at the start of data. */
const KEEP = 96;
const HEAD_END = Buffer.from("\r\n\r\n");

/** How a connection ended, as the scenario counts it. */
export type EndKind = "no-response" | "status" | "after-response";

export class IdClient {
  /** The last event id received, sent as `Last-Event-ID` on the next connection. */
  lastId: string | undefined;
  /** Sequence number of the first and the last event received (-1: none yet). */
  firstSeq = -1;
  lastSeq = -1;
  /** Events received, over every connection. */
  received = 0;
  /** Events whose sequence number was not above the one before (a duplicate or reordering). */
  outOfOrder = 0;
  /** True once the head and the opening comment of the current connection arrived. */
  open = false;
  /** Called for each event, with its sequence number. */
  onEvent: ((seq: number) => void) | undefined;
  /** Called once per connection when it ends, with how (and the socket error's code, if any). */
  onEnd: ((kind: EndKind, error: string | undefined) => void) | undefined;
  /** Called once per connection when the head arrived (its status line). */
  onHead: ((status: number) => void) | undefined;

  #socket: net.Socket | undefined;
  #head: Buffer | undefined;
  #status = 0;
  #line = Buffer.allocUnsafe(KEEP);
  #lineLen = 0;
  #id: string | undefined;
  #seq = -1;

  constructor(
    readonly port: number,
    readonly path: string,
  ) {}

  /** Opens a connection, resuming after {@link lastId} when `resume` is true. */
  connect(resume: boolean): net.Socket {
    this.open = false;
    this.#head = Buffer.alloc(0);
    this.#status = 0;
    this.#lineLen = 0;
    const socket = net.connect(this.port, "127.0.0.1");
    this.#socket = socket;
    const last = resume && this.lastId !== undefined ? `Last-Event-ID: ${this.lastId}\r\n` : "";
    socket.write(`GET ${this.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${last}\r\n`);
    socket.on("data", (chunk: Buffer) => this.#data(chunk));
    let error: string | undefined;
    socket.on("error", (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    socket.once("close", () => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.open = false;
      const kind =
        this.#head !== undefined
          ? "no-response"
          : this.#status === 200
            ? "after-response"
            : "status";
      this.onEnd?.(kind, error);
    });
    return socket;
  }

  /** Drops the connection at once (no `onEnd`). */
  drop(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    this.open = false;
    socket?.destroy();
  }

  get connected(): boolean {
    return this.#socket !== undefined;
  }

  #data(chunk: Buffer): void {
    let body = chunk;
    if (this.#head !== undefined) {
      const head = Buffer.concat([this.#head, chunk]);
      const end = head.indexOf(HEAD_END);
      if (end < 0) {
        this.#head = head;
        return;
      }
      this.#status = Number(head.subarray(9, 12).toString("latin1"));
      this.#head = undefined;
      this.onHead?.(this.#status);
      if (this.#status !== 200) {
        this.#socket?.destroy();
        return;
      }
      body = head.subarray(end + 4);
    }
    let start = 0;
    while (start < body.length) {
      const nl = body.indexOf(LF, start);
      const end = nl < 0 ? body.length : nl;
      const take = Math.min(end - start, KEEP - this.#lineLen);
      if (take > 0) body.copy(this.#line, this.#lineLen, start, start + take);
      this.#lineLen += Math.max(0, take);
      if (nl < 0) break;
      this.#endLine();
      start = nl + 1;
    }
  }

  #endLine(): void {
    const line = this.#line;
    const n = this.#lineLen;
    this.#lineLen = 0;
    if (n === 0) {
      if (this.#seq >= 0) this.#event();
      this.#id = undefined;
      this.#seq = -1;
      return;
    }
    if (line[0] === 58) {
      this.open = true; // a comment: the opening one, or a keep-alive
    } else if (n > 4 && line.toString("latin1", 0, 4) === "id: ") {
      this.#id = line.toString("utf8", 4, n);
    } else if (n > 6 && line.toString("latin1", 0, 6) === "data: ") {
      let seq = 0;
      let i = 6;
      for (; i < n && (line[i] as number) >= 48 && (line[i] as number) <= 57; i++) {
        seq = seq * 10 + (line[i] as number) - 48;
      }
      this.#seq = i > 6 ? seq : -1;
    }
  }

  #event(): void {
    const seq = this.#seq;
    if (this.#id !== undefined) this.lastId = this.#id;
    if (this.firstSeq < 0) this.firstSeq = seq;
    else if (seq <= this.lastSeq) this.outOfOrder++;
    this.lastSeq = Math.max(this.lastSeq, seq);
    this.received++;
    this.onEvent?.(seq);
  }
}
