/** A chunk of bytes on its way to a subscriber's connection. */

/** A chunk of bytes to write; updates carry their id so a replay can drop what it already sent. */
export interface Frame {
  readonly bytes: Buffer;
  readonly id?: string | undefined;
}

/** Copies frames, in order, into one Buffer of `total` bytes. */
export function concatFrames(frames: readonly Frame[], total: number): Buffer {
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const frame of frames) {
    out.set(frame.bytes, offset);
    offset += frame.bytes.length;
  }
  return out;
}
