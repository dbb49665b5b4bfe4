/**
 * Which subscribers an update goes to. Exact topics are looked up in a map (O(topics of the
 * update)), subscribers of `*` are kept apart, and subscribers with a pattern selector (URI
 * template, URL pattern) are kept in a list checked per update through the bounded match cache.
 * A subscriber with several matching selectors, or an update with several topics, still yields
 * each subscriber once. Exact and `*` subscribers cost no matching and no allocation.
 */
import { matchesTopic, type Selector } from "./selectors/selector.ts";
import type { Subscriber } from "./subscriber.ts";

interface PatternEntry {
  readonly subscriber: Subscriber;
  readonly selector: Selector;
}

export class TopicIndex {
  readonly #exact = new Map<string, Set<Subscriber>>();
  readonly #any = new Set<Subscriber>();
  // One entry per (subscriber, pattern selector); removal is O(patterns), which is rare.
  #patterns: PatternEntry[] = [];
  // Incremented per visit; a subscriber whose `mark` equals it was already visited.
  #visit = 0;

  add(subscriber: Subscriber): void {
    for (const selector of subscriber.selectors) {
      if (selector.kind === "any") {
        this.#any.add(subscriber);
      } else if (selector.kind === "exact") {
        let set = this.#exact.get(selector.source);
        if (set === undefined) {
          set = new Set();
          this.#exact.set(selector.source, set);
        }
        set.add(subscriber);
      } else {
        this.#patterns.push({ subscriber, selector });
      }
    }
  }

  delete(subscriber: Subscriber): void {
    let patterns = false;
    for (const selector of subscriber.selectors) {
      if (selector.kind === "any") {
        this.#any.delete(subscriber);
      } else if (selector.kind === "exact") {
        const set = this.#exact.get(selector.source);
        if (set === undefined) continue;
        set.delete(subscriber);
        if (set.size === 0) this.#exact.delete(selector.source);
      } else {
        patterns = true;
      }
    }
    if (patterns) this.#patterns = this.#patterns.filter((e) => e.subscriber !== subscriber);
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
    if (this.#patterns.length === 0) return;
    for (const entry of this.#patterns) {
      const subscriber = entry.subscriber;
      if (subscriber.mark === mark) continue;
      for (const topic of topics) {
        if (matchesTopic(entry.selector, topic)) {
          subscriber.mark = mark;
          visit(subscriber);
          break;
        }
      }
    }
  }
}
