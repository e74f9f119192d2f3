/**
 * A webhook's custom `headers` (docs/api.md, "Custom headers"): sent with every attempt, sealed
 * at rest like signing secrets, and shown only as MASKED_HEADER_VALUE. A PUT replaces the whole
 * set, and the mask sent back for a name keeps that name's stored value, so that a GET's object
 * can be sent back unchanged.
 */
import type { ErrorDetail } from '../errors.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { MASKED_HEADER_VALUE } from './webhook-limits.js';


/**
 * Names the delivery sets itself, or that would change how the request is carried or read. With
 * those of the contract, `expect` and `keep-alive`: the HTTP client (undici) refuses a request
 * that carries either, so every attempt would fail.
 */
const RESERVED_NAMES = new Set(['host', 'content-type', 'content-length', 'connection', 'transfer-encoding', 'te', 'upgrade', 'user-agent', 'traceparent', 'expect', 'keep-alive']);
const RESERVED_PREFIXES = ['proxy-', 'webhook-', 'x-helpdesk-'];

/** An HTTP token (RFC 9110, "Tokens"). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/**
 * What a field value may hold on the wire (RFC 9110, "Field Values"): tabs, visible ASCII and
 * spaces, and Latin-1 bytes. CR, LF and NUL would split or end the header; the rest of the
 * control characters and anything past Latin-1 cannot be sent at all, so they are refused
 * here rather than failing every attempt.
 */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]+$/;
/**
 * Spaces or tabs at either end: a receiver strips them (RFC 9110, "Field Values"), so it would
 * get another value than the one stored, or none at all.
 */
const SURROUNDING_WHITESPACE = /^[\t ]|[\t ]$/;

/** Name to value as the admin gave them, in their order; values clear or sealed as the context says. */
export type HeaderSet = Record<string, string>;

function reservedName(name: string): boolean {
  const lower = name.toLowerCase();
  return RESERVED_NAMES.has(lower) || RESERVED_PREFIXES.some((prefix) => lower.startsWith(prefix));
}

function sealContext(webhookId: string, name: string): string {
  return `${webhookId}:header:${name.toLowerCase()}`;
}

/**
 * What is wrong with a set of headers given in a request, at paths under `path`, beyond what the
 * request schema checks (the count, and each value a string of 1 to MAX_HEADER_VALUE_LENGTH).
 * `stored` names the headers the webhook has (none on creation): only those may be kept with
 * the mask.
 */
export function headerProblems(headers: HeaderSet, path: string, stored: HeaderSet): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  const storedNames = new Set(Object.keys(stored).map((name) => name.toLowerCase()));
  const seen = new Set<string>();
  for (const [name, value] of Object.entries(headers)) {
    const at = `${path}.${name}`;
    const lower = name.toLowerCase();
    if (!TOKEN.test(name)) problems.push({ path: at, message: 'is not a valid header name (an HTTP token: letters, digits and !#$%&\'*+-.^_`|~)' });
    else if (reservedName(name)) problems.push({ path: at, message: 'is a header Helpdesk sets or that changes how the request is carried, and cannot be set' });
    else if (seen.has(lower)) problems.push({ path: at, message: 'repeats a header name (names are compared without regard to case)' });
    seen.add(lower);
    if (value === MASKED_HEADER_VALUE && !storedNames.has(lower)) {
      problems.push({ path: at, message: `is the mask "${MASKED_HEADER_VALUE}", which keeps a stored value, and this webhook has none for this name` });
    } else if (!FIELD_VALUE.test(value)) {
      problems.push({ path: at, message: 'must not contain CR, LF, NUL or other control characters, nor characters beyond Latin-1' });
    } else if (SURROUNDING_WHITESPACE.test(value)) {
      problems.push({ path: at, message: 'must not begin or end with a space or a tab' });
    }
  }
  return problems;
}

/** The values as responses show them. */
export function maskHeaders(headers: HeaderSet): HeaderSet {
  return Object.fromEntries(Object.keys(headers).map((name) => [name, MASKED_HEADER_VALUE]));
}

export function sealHeaders(box: SecretBox, webhookId: string, headers: HeaderSet): HeaderSet {
  return Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, box.seal(value, sealContext(webhookId, name))]));
}

export function openHeaders(box: SecretBox, webhookId: string, sealed: HeaderSet): HeaderSet {
  return Object.fromEntries(Object.entries(sealed).map(([name, value]) => [name, box.open(value, sealContext(webhookId, name))]));
}

/**
 * The clear set a request asks for, with each masked value replaced by the stored value of its
 * name (found without regard to case). `stored` is clear too.
 */
export function resolveMaskedValues(requested: HeaderSet, stored: HeaderSet): HeaderSet {
  const storedByName = new Map(Object.entries(stored).map(([name, value]) => [name.toLowerCase(), value]));
  return Object.fromEntries(Object.entries(requested).map(([name, value]) => [name, value === MASKED_HEADER_VALUE ? storedByName.get(name.toLowerCase())! : value]));
}
