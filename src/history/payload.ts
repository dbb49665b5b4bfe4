/**
 * How an update is stored in a shared engine (a Redis stream entry, a NATS message): JSON with
 * compact field names, since every stored update carries them. Its id is stored only when the
 * publisher gave one; the engine derives a generated id from where the update sits.
 */
import type { UpdateFields } from "../update.ts";

interface Payload {
  t: string[];
  d: string;
  i?: string;
  y?: string;
  r?: number;
  p?: 1;
}

/** The stored form of `fields`. */
export function encodePayload(fields: UpdateFields): string {
  const p: Payload = { t: [...fields.topics], d: fields.data };
  if (fields.id !== undefined) p.i = fields.id;
  if (fields.type !== undefined) p.y = fields.type;
  if (fields.retry !== undefined) p.r = fields.retry;
  if (fields.private) p.p = 1;
  return JSON.stringify(p);
}

/** The fields of a stored update; throws when `text` is not JSON. */
export function decodePayload(text: string): UpdateFields {
  const p = JSON.parse(text) as Payload;
  return { topics: p.t, data: p.d, id: p.i, type: p.y, retry: p.r, private: p.p === 1 };
}
