/**
 * Where a subscriber's bytes go, and the one way they are written there.
 *
 *   frames ──writeBatch()──▶ FrameSink.writeFrames(frames)     (the in-process consumer)
 *                       └──▶ Sink.write(one Buffer)            (a socket, an HTTP/2 stream, …)
 *
 * Invariant: a batch of frames is one write, in order; a lone frame's Buffer is written as it is
 * (never copied), and the return value is the sink's own: false means it is backed up and
 * nothing more may be written until the adapter calls `drained`.
 */
import { CrierError } from "./errors.ts";
import type { Frame } from "./frame.ts";
import type { CloseReason } from "./subscriber.ts";

/**
 * Where a subscriber's bytes go: an HTTP/1.1 response today, an HTTP/2 stream or a Fetch
 * `ReadableStream` tomorrow. The adapter calls `Connection.drained` on drain and
 * `Connection.gone` when the peer goes away.
 */
export interface Sink {
  /** What carries the stream, counted per kind in `hub.stats.sinks` (e.g. `node-socket`). */
  readonly kind?: string | undefined;
  /** Sends the response head. Called once, before the first write. */
  start(headers: Readonly<Record<string, string>>): void;
  /** Writes bytes; returns false when the transport is backed up (then wait for `drained`). */
  write(chunk: Buffer): boolean;
  /** Ends the stream after what was written. */
  end(): void;
  /**
   * Drops the connection at once, discarding anything buffered. `reason` says why the
   * subscription ended (a backed-up one is dropped even when the hub closes).
   */
  destroy(reason?: CloseReason): void;
}

/**
 * A sink that takes the frames themselves rather than their joined bytes: the in-process
 * consumer (`hub.updates()`), which hands out the `Update` objects. Internal.
 */
export interface FrameSink extends Sink {
  /** Takes frames in order; returns false when the consumer is backed up (then wait for `drained`). */
  writeFrames(frames: readonly Frame[]): boolean;
}

/** Joins several frames into one chunk of `bytes` bytes. */
export interface Joiner {
  join(frames: readonly Frame[], bytes: number): Buffer;
}

/**
 * Writes `frames` (of `bytes` bytes in all) as one write: a frame sink takes them as they are,
 * any other sink one Buffer (a lone frame's own, else `joiner`'s). Returns false when the sink
 * is backed up.
 */
export function writeBatch(
  sink: Sink,
  frames: readonly Frame[],
  bytes: number,
  joiner: Joiner,
): boolean {
  if (isFrameSink(sink)) return sink.writeFrames(frames);
  return sink.write(frames.length === 1 ? (frames[0] as Frame).bytes : joiner.join(frames, bytes));
}

export function isFrameSink(sink: Sink): sink is FrameSink {
  return typeof (sink as Partial<FrameSink>).writeFrames === "function";
}

// `hub.connect()` is public: a sink from plain JavaScript that cannot work is refused with a
// typed error before anything is registered, never a TypeError from deep inside a flush.
export function assertSink(sink: Sink): void {
  const methods = ["start", "write", "end", "destroy"] as const;
  if (
    typeof sink !== "object" ||
    sink === null ||
    methods.some((method) => typeof sink[method] !== "function")
  ) {
    throw new CrierError(
      "CRIER_ERR_INVALID_OPTION",
      "a sink must be an object with start, write, end and destroy methods",
    );
  }
}
