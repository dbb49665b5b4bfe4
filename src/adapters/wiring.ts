/**
 * How an adapter tells a connection what its transport saw: `drain` and `close` listeners shared
 * by every subscriber (plain functions, not two closures per connection), each finding its
 * connection on the emitter it listens to.
 */
import type { EventEmitter } from "node:events";
import type { Connection } from "../subscriber.ts";

const CONNECTION = Symbol("crier.connection");
interface Carrier {
  [CONNECTION]?: Connection;
}
function onDrain(this: Carrier): void {
  this[CONNECTION]?.drained();
}
function onClose(this: Carrier): void {
  this[CONNECTION]?.gone();
}

/** Reports the emitter's `close` to `connection` as the peer going away. */
export function reportClose(emitter: EventEmitter, connection: Connection): void {
  (emitter as Carrier)[CONNECTION] = connection;
  emitter.on("close", onClose);
}

/** Reports the emitter's `drain` and `close` to `connection`. */
export function reportDrainAndClose(emitter: EventEmitter, connection: Connection): void {
  reportClose(emitter, connection);
  emitter.on("drain", onDrain);
}
