/**
 * The publishers in a thread of their own (`npm run bench -- … --publisher-thread`). In the
 * subscribers' thread, a publisher at 10,000 subscribers waits for the generator to parse each
 * burst the hub writes before it reads its answer and sends the next update, so the generator's
 * own turn paces the publishers. Real publishers are other processes; a worker thread on the
 * generator's core is the nearest this machine has. With it the generator, not the hub, becomes
 * the bottleneck of the floods (BENCHMARKS.md, "Overload"). The answers' arrival times are shared
 * with the main thread through a `SharedArrayBuffer`.
 */
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { Publisher, type PublishStats } from "./publisher.ts";

interface Setup {
  readonly host: string;
  readonly port: number;
  readonly topic: string;
  readonly token: string;
  readonly lanes: number;
  readonly accepted: SharedArrayBuffer;
}

type Job =
  | { readonly op: "flood"; readonly maxEvents: number; readonly durationMs: number }
  | { readonly op: "rate"; readonly perSec: number; readonly durationMs: number };

/** A {@link Publisher} running in a worker thread, with the same methods. */
export class ThreadPublisher {
  readonly #worker: Worker;
  readonly #acceptedNs: Float64Array;

  constructor(host: string, port: number, topic: string, token: string, lanes: number) {
    const accepted = new SharedArrayBuffer(8 << 20);
    this.#acceptedNs = new Float64Array(accepted);
    const setup: Setup = { host, port, topic, token, lanes, accepted };
    // A worker does not inherit the TypeScript loader: it registers it, then loads this module.
    const load = `import("tsx/esm/api").then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); });`;
    this.#worker = new Worker(load, { eval: true, workerData: setup });
    this.#worker.unref();
  }

  flood(maxEvents: number, durationMs: number): Promise<PublishStats> {
    return this.#run({ op: "flood", maxEvents, durationMs });
  }

  rate(perSec: number, durationMs: number): Promise<PublishStats> {
    return this.#run({ op: "rate", perSec, durationMs });
  }

  /** See {@link Publisher.acceptedNs}. */
  acceptedNs(seq: number): number {
    return this.#acceptedNs[seq] ?? 0;
  }

  close(): void {
    void this.#worker.terminate();
  }

  #run(job: Job): Promise<PublishStats> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#worker.once("error", onError);
      this.#worker.once("message", (stats: PublishStats) => {
        this.#worker.off("error", onError);
        resolve(stats);
      });
      this.#worker.postMessage(job);
    });
  }
}

if (!isMainThread && parentPort !== null) {
  const port = parentPort;
  const s = workerData as Setup;
  const publisher = new Publisher(s.host, s.port, s.topic, s.token, s.lanes, 128, s.accepted);
  port.on("message", (job: Job) => {
    const run =
      job.op === "flood"
        ? publisher.flood(job.maxEvents, job.durationMs)
        : publisher.rate(job.perSec, job.durationMs);
    void run.then((stats) => port.postMessage(stats));
  });
}
