/** Where the Mercure protocol lives on the hub: one definition for every module that needs it. */

/** The Mercure endpoint: subscribe with GET, publish with POST. */
export const MERCURE_PATH = "/.well-known/mercure";

/** Where the subscription events and the subscriptions API live. */
export const SUBSCRIPTIONS_PATH = `${MERCURE_PATH}/subscriptions`;
