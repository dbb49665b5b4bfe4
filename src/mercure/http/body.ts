/** Reads a request body, refusing it as soon as it passes the limit. */
import type { NodeRequest } from "../../adapters/node.ts";
import { CrierError } from "../../errors.ts";

/** Resolves with the whole body; rejects with `CRIER_ERR_PAYLOAD_TOO_LARGE` past `limit` bytes. */
export function readBody(req: NodeRequest, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new CrierError("CRIER_ERR_PAYLOAD_TOO_LARGE", `request body is larger than ${limit} bytes`);
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) return Promise.reject(tooLarge());
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
    req.once("end", () =>
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)),
    );
    req.once("error", reject);
  });
}
