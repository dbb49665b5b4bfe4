/**
 * Readiness of the standalone hub: whether a load balancer should send it traffic. Liveness
 * (`/healthz`) only says the process answers; readiness also needs the backplane to answer and
 * the hub not to be draining.
 */
import type { Hub } from "../hub.ts";
import { hubArgument, objectArgument } from "../options.ts";

/** A backplane whose availability can be read (`RedisBackplane`). */
export interface AvailableBackplane {
  readonly available: boolean;
}

export class Readiness {
  /** Set at the start of a drain: from then on the hub is not ready. */
  draining = false;
  readonly #hub: Hub;
  readonly #backplane: AvailableBackplane | undefined;

  constructor(hub: Hub, backplane?: AvailableBackplane | undefined) {
    hubArgument(hub, "new Readiness");
    if (backplane !== undefined) {
      objectArgument(
        backplane,
        "new Readiness's backplane must have an available flag (RedisBackplane)",
      );
    }
    this.#hub = hub;
    this.#backplane = backplane;
  }

  /** True while the hub should get traffic. */
  readonly ready = (): boolean =>
    !this.draining && !this.#hub.closing && (this.#backplane?.available ?? true);
}
