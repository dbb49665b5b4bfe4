/**
 * How an update is stored in a shared engine (a Redis stream entry, a NATS message): JSON with
 * compact field names, since every stored update carries them. Its id is stored only when the
 * publisher gave one; the engine derives a generated id from where the update sits.
 */
import { type UpdateFields, validateUpdate } from "../update.ts";

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

/**
 * The fields of a stored update; throws when `text` is not JSON or not an update a publisher
 * could have stored (anything may write to the engine): the same checks as a publish, so that a
 * malformed entry is skipped where it is read, never met by a subscriber's matching, its
 * resume or its response headers.
 */
export function decodePayload(text: string): UpdateFields {
  const p = JSON.parse(text) as Partial<Record<keyof Payload, unknown>> | null;
  if (typeof p !== "object" || p === null || Array.isArray(p.t) === false) {
    throw new TypeError("a stored update is an object with an array of topics");
  }
  if (p.p !== undefined && p.p !== 1) throw new TypeError("a stored update's p is 1 or absent");
  return validateUpdate({
    topics: p.t as string[],
    data: p.d as string,
    id: p.i as string | undefined,
    type: p.y as string | undefined,
    retry: p.r as number | undefined,
    private: p.p === 1,
  });
}
