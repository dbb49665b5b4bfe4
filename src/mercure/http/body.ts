/** Reads a request body, refusing it as soon as it passes the limit: node:http's or a Fetch one. */
import type { NodeRequest } from "../../adapters/node.ts";
import { CrierError } from "../../errors.ts";

function tooLarge(limit: number): CrierError {
  return new CrierError(
    "CRIER_ERR_PAYLOAD_TOO_LARGE",
    `request body is larger than ${limit} bytes`,
  );
}

function incomplete(): CrierError {
  return new CrierError("CRIER_ERR_BAD_REQUEST", "the request ended before its body was complete");
}

/**
 * Resolves with the whole body; rejects with `CRIER_ERR_PAYLOAD_TOO_LARGE` past `limit` bytes,
 * and with `CRIER_ERR_BAD_REQUEST` when the request closes before its body has all arrived: a
 * part of a body is never taken for the whole of it.
 */
export function readBody(req: NodeRequest, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  // The stream may have been reset while the request was being authenticated, before anything
  // listened: node:http2 has then already ended the (partial) body.
  if (req.aborted) return Promise.reject(incomplete());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    let ended = false;
    req.once("end", () => {
      ended = true;
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    });
    req.once("error", reject);
    // node:http2's compatibility request ends its body when the stream closes, whether or not
    // the peer finished it (END_STREAM), and says 'close' first; node:http says 'aborted'.
    const cut = () => {
      if (!ended) reject(incomplete());
    };
    req.once("close", cut);
    req.once("aborted", cut);
  });
}

/**
 * The whole body of a Fetch `Request`, read chunk by chunk so that a body past `limit` bytes is
 * refused (and the rest cancelled) without being held, which `request.arrayBuffer()` would do.
 */
export async function readRequestBody(request: Request, limit: number): Promise<Buffer> {
  if (Number(request.headers.get("content-length") ?? 0) > limit) throw tooLarge(limit);
  if (request.body === null) return Buffer.alloc(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    let chunk: Awaited<ReturnType<typeof reader.read>>;
    try {
      chunk = await reader.read();
    } catch {
      // The body stream errored (the client went away mid-body): as node:http's aborted request.
      throw incomplete();
    }
    const { done, value } = chunk;
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge(limit);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}
