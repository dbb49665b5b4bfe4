/**
 * Which subscribers an update goes to. Exact topics are looked up in a map (O(topics of the
 * update)), subscribers of `*` are kept apart; a subscriber with several matching selectors, or an
 * update with several topics, still yields each subscriber once.
 */
import { ANY_TOPIC } from "./selectors.ts";
import type { Subscriber } from "./subscriber.ts";

export class TopicIndex {
  readonly #exact = new Map<string, Set<Subscriber>>();
  readonly #any = new Set<Subscriber>();
  // Incremented per visit; a subscriber whose `mark` equals it was already visited.
  #visit = 0;

  add(subscriber: Subscriber): void {
    for (const selector of subscriber.topics) {
      if (selector === ANY_TOPIC) {
        this.#any.add(subscriber);
        continue;
      }
      let set = this.#exact.get(selector);
      if (set === undefined) {
        set = new Set();
        this.#exact.set(selector, set);
      }
      set.add(subscriber);
    }
  }

  delete(subscriber: Subscriber): void {
    for (const selector of subscriber.topics) {
      if (selector === ANY_TOPIC) {
        this.#any.delete(subscriber);
        continue;
      }
      const set = this.#exact.get(selector);
      if (set === undefined) continue;
      set.delete(subscriber);
      if (set.size === 0) this.#exact.delete(selector);
    }
  }

  /** Calls `visit` once for each subscriber with a selector matching one of `topics`. */
  forEachMatch(topics: readonly string[], visit: (subscriber: Subscriber) => void): void {
    const mark = ++this.#visit;
    for (const topic of topics) {
      const set = this.#exact.get(topic);
      if (set === undefined) continue;
      for (const subscriber of set) {
        if (subscriber.mark !== mark) {
          subscriber.mark = mark;
          visit(subscriber);
        }
      }
    }
    for (const subscriber of this.#any) {
      if (subscriber.mark !== mark) {
        subscriber.mark = mark;
        visit(subscriber);
      }
    }
  }
}
