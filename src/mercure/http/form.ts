/**
 * A strict `application/x-www-form-urlencoded` parser: the WHATWG algorithm (split on `&`, the
 * first `=` separates name and value, `+` is a space, `%XX` is a byte, a stray `%` stays), except
 * that names and values that are not valid UTF-8 once percent-decoded are refused, where
 * `URLSearchParams` would silently replace them with U+FFFD.
 */
import { CrierError } from "../../errors.ts";

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The name/value pairs of `body`, in order; throws `CRIER_ERR_BAD_REQUEST` when one is not
 * valid UTF-8 (`what` names the pairs in the reason: a request body's form fields, or a query's
 * parameters).
 */
export function parseFormStrict(body: Buffer, what = "a form field"): URLSearchParams {
  const pairs: [string, string][] = [];
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf(0x26, start); // &
    if (end === -1) end = body.length;
    if (end > start) {
      const sequence = body.subarray(start, end);
      const eq = sequence.indexOf(0x3d); // =
      const name = eq === -1 ? sequence : sequence.subarray(0, eq);
      const value = eq === -1 ? sequence.subarray(sequence.length) : sequence.subarray(eq + 1);
      pairs.push([decode(name, what), decode(value, what)]);
    }
    start = end + 1;
  }
  return new URLSearchParams(pairs);
}

// [spec, draft-08] Field names and values MUST be UTF-8.
function decode(bytes: Buffer, what: string): string {
  const out = Buffer.allocUnsafe(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (b === 0x2b) {
      out[n++] = 0x20;
    } else if (b === 0x25 && i + 2 < bytes.length && isHex(bytes[i + 1]) && isHex(bytes[i + 2])) {
      out[n++] = Number.parseInt(bytes.toString("latin1", i + 1, i + 3), 16);
      i += 2;
    } else {
      out[n++] = b;
    }
  }
  try {
    return decoder.decode(out.subarray(0, n));
  } catch {
    throw new CrierError("CRIER_ERR_BAD_REQUEST", `${what} is not valid UTF-8`);
  }
}

function isHex(b: number | undefined): boolean {
  return (
    b !== undefined &&
    ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66))
  );
}
