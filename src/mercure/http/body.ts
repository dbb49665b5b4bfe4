/** Reads a request body, refusing it as soon as it passes the limit. */
import type { NodeRequest } from "../../adapters/node.ts";
import { CrierError } from "../../errors.ts";

const incomplete = () =>
  new CrierError("CRIER_ERR_BAD_REQUEST", "the request ended before its body was complete");

/**
 * Resolves with the whole body; rejects with `CRIER_ERR_PAYLOAD_TOO_LARGE` past `limit` bytes,
 * and with `CRIER_ERR_BAD_REQUEST` when the request closes before its body has all arrived: a
 * part of a body is never taken for the whole of it.
 */
export function readBody(req: NodeRequest, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new CrierError("CRIER_ERR_PAYLOAD_TOO_LARGE", `request body is larger than ${limit} bytes`);
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) return Promise.reject(tooLarge());
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
        reject(tooLarge());
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
      if (!ended) {
        reject(
          new CrierError("CRIER_ERR_BAD_REQUEST", "the request ended before its body was complete"),
        );
      }
    };
    req.once("close", cut);
    req.once("aborted", cut);
  });
}
