/**
 * Topic selectors: which topics a subscription (or a token's claim) covers. A selector is either
 * `*` (every topic) or a topic compared exactly.
 */

/** The selector that matches every topic. */
export const ANY_TOPIC = "*";

/** True when `selector` covers `topic`. */
export function matchesTopic(selector: string, topic: string): boolean {
  return selector === ANY_TOPIC || selector === topic;
}

/** True when some selector covers some of the topics. */
export function coversAny(selectors: readonly string[], topics: readonly string[]): boolean {
  for (const topic of topics) {
    for (const selector of selectors) if (matchesTopic(selector, topic)) return true;
  }
  return false;
}

/** True when every topic is covered by some selector. */
export function coversAll(selectors: readonly string[], topics: readonly string[]): boolean {
  for (const topic of topics) {
    if (!selectors.some((selector) => matchesTopic(selector, topic))) return false;
  }
  return true;
}
