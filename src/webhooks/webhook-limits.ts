/**
 * The limits of a webhook's `headers` and `rateLimit` (docs/api.md, "Custom headers", "Rate
 * limits"), defined once: the request schema, the service's checks and the console's form take
 * them from here. This file imports nothing: the console's bundle takes it as it is.
 */

/** The most custom headers a webhook may have. */
export const MAX_HEADERS = 20;
/** The longest value of a custom header, in characters. */
export const MAX_HEADER_VALUE_LENGTH = 1024;
/** What every response shows in place of a header's value; sent back in a PUT, it keeps the stored one. */
export const MASKED_HEADER_VALUE = '********';
/** The highest `rateLimit`, in deliveries a second. */
export const MAX_RATE_LIMIT = 10_000;
