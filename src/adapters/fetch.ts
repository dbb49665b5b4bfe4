/**
 * `crier-hub/fetch`: the Fetch-API binding, for runtimes and frameworks that answer a `Request`
 * with a `Response` (Bun, Deno, Hono, Next route handlers, a Node bridge).
 *
 *   hub ──write()──▶ ReadableStream queue (≤ highWaterMark bytes) ──pull()──▶ the runtime ──▶ client
 *                     write() returns false once it is full; the next pull() is `drained`
 *
 * Invariant: the stream's own queue holds at most one chunk past its high-water mark. A reader
 * that stops pulling backs the subscriber up exactly as a socket that stops reading does: its
 * bounded queue fills and it is evicted (or `stalled`), never an unbounded stream buffer.
 *
 *   import { createHub } from "crier-hub";
 *   import { eventStream } from "crier-hub/fetch";
 *   const hub = createHub();
 *   Bun.serve({ fetch: (request) => eventStream(hub, request, { topics: ["chat"] }) });
 */
import { CrierError } from "../errors.ts";
import { headerText } from "../head.ts";
import type { Hub, SubscribeOptions } from "../hub.ts";
import { hubArgument, integerOption } from "../options.ts";
import type { Connection, Sink, Subscription } from "../subscriber.ts";

/** Options of {@link eventStream}: those of `hub.connect`, less node:http's `detach`. */
export interface EventStreamOptions extends Omit<SubscribeOptions, "detach"> {
  /**
   * Bytes the response stream buffers before the subscriber counts as backed up (the stream's
   * high-water mark). Default 65,536.
   */
  readonly highWaterMark?: number | undefined;
}

/** Defaults of {@link EventStreamOptions}. */
export const EVENT_STREAM_DEFAULTS = { highWaterMark: 64 * 1024 } as const;

class StreamSink implements Sink {
  readonly kind = "fetch-stream";
  readonly stream: ReadableStream<Uint8Array>;
  connection: Connection | undefined;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #done = false;
  #started = false;
  #backedUp = false;
  readonly #respond: (response: Response) => void;
  readonly #signal: AbortSignal;
  // The client left: nobody reads the stream any more, so it ends quietly instead of failing.
  readonly #abort = () => {
    if (this.#finish()) this.#controller.close();
    // Left before the head was known (the history still being read): the caller's promise must
    // settle all the same, with the stream just closed.
    this.start({});
    this.connection?.gone();
  };

  constructor(highWaterMark: number, signal: AbortSignal, respond: (response: Response) => void) {
    this.#respond = respond;
    this.#signal = signal;
    this.stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        // Only a pull that follows a refused write is news for the subscriber.
        pull: () => {
          if (!this.#backedUp) return;
          this.#backedUp = false;
          this.connection?.drained();
        },
        cancel: () => {
          this.#done = true;
          this.connection?.gone();
        },
      },
      new ByteLengthQueuingStrategy({ highWaterMark }),
    );
  }

  /** Ends the subscription when the request aborts; called once it is registered. */
  watch(connection: Connection): void {
    this.connection = connection;
    if (this.#signal.aborted) this.#abort();
    else if (!this.#done) this.#signal.addEventListener("abort", this.#abort, { once: true });
  }

  start(headers: Readonly<Record<string, string>>): void {
    if (this.#started) return;
    // Built first: a head the runtime refuses leaves the sink unstarted, so that `destroy`
    // still answers (with a stream that fails at once) instead of leaving the caller waiting.
    const response = new Response(this.stream, { status: 200, headers });
    this.#started = true;
    this.#respond(response);
  }

  write(chunk: Buffer): boolean {
    if (this.#done) return false;
    this.#controller.enqueue(chunk);
    this.#backedUp = (this.#controller.desiredSize ?? 0) <= 0;
    return !this.#backedUp;
  }

  end(): void {
    if (this.#finish()) this.#controller.close();
  }

  // An error, not a close: the client sees a broken stream and reconnects with Last-Event-ID.
  destroy(): void {
    if (!this.#finish()) return;
    this.#controller.error(new CrierError("CRIER_ERR_UNAVAILABLE", "the event stream was dropped"));
    // A subscription dropped before its head (the history could not be read) still answers:
    // with a stream that fails at once, which an EventSource retries (a non-200 status it would not).
    this.start({});
  }

  #finish(): boolean {
    this.#signal.removeEventListener("abort", this.#abort);
    if (this.#done) return false;
    this.#done = true;
    return true;
  }
}

/**
 * Subscribes to the hub and answers with the event stream: a `Response` whose body is a
 * `ReadableStream` of the events. Resumes after the request's `Last-Event-ID` header unless
 * `options.lastEventId` is given; the response's `Last-Event-ID` header is then the id resumed
 * after, or `earliest` when the history no longer holds it. The subscription ends when the
 * request's `signal` aborts or the reader cancels the body. Resolves once the head is known
 * (at once with the in-memory history, after the history read with Redis); rejects with a
 * `CrierError` for invalid options or selectors (`CRIER_ERR_BAD_REQUEST`) or a closed hub.
 */
export async function eventStream(
  hub: Hub,
  request: Request,
  options: EventStreamOptions,
): Promise<Response> {
  return streamResponse(hub, request, options).response;
}

/** An event stream's subscription, and the `Response` that carries it once its head is known. */
export interface StreamedResponse {
  readonly subscription: Subscription;
  readonly response: Promise<Response>;
}

/**
 * {@link eventStream}, also handing back the subscription (for the Mercure handler, which
 * counts and lists it). Throws what `eventStream` rejects with.
 */
export function streamResponse(
  hub: Hub,
  request: Request,
  options: EventStreamOptions,
): StreamedResponse {
  hubArgument(hub, "eventStream's first argument");
  if (typeof request?.headers?.get !== "function" || !(request.signal instanceof AbortSignal)) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "eventStream needs a Fetch Request (with headers and signal) as its second argument",
    );
  }
  if (typeof options !== "object" || options === null) {
    throw new CrierError("CRIER_ERR_INVALID_OPTION", "eventStream needs options with topics");
  }
  const highWaterMark = integerOption(
    "highWaterMark",
    options.highWaterMark,
    EVENT_STREAM_DEFAULTS.highWaterMark,
    1,
  );
  const header = request.headers.get("last-event-id");
  const lastEventId =
    options.lastEventId ?? (header === null || header === "" ? undefined : headerText(header));
  const { highWaterMark: _, ...subscribe } = options;
  let respond!: (response: Response) => void;
  const response = new Promise<Response>((resolve) => {
    respond = resolve;
  });
  const sink = new StreamSink(highWaterMark, request.signal, (r) => respond(r));
  const subscription = hub.connect(sink, { ...subscribe, lastEventId });
  sink.watch(subscription);
  return { subscription, response };
}
