import { contract } from "./backplane-contract.ts";
import { ENGINES } from "./backplane-engines.ts";
import { CuttableProxy } from "./redis-harness.ts";

for (const [engine, skipReason] of ENGINES) {
  contract(engine, await skipReason(), (target) => new CuttableProxy(target));
}
