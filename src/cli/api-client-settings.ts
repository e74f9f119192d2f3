/**
 * What `helpdesk listen` and `helpdesk trigger` share: the server URL and API key they take, and
 * how they tell the user what went wrong. Exit codes (docs/configuration.md, "listen and trigger"):
 * 2 for a mistake in the command line, 1 for anything the server or the network said.
 */
import { DEFAULT_SERVER_URL, loadClientSettings } from '../config.js';
import type { ApiAnswer } from '../outbound/api-client.js';
import { API_BASE } from '../shared/api-base.js';

export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A mistake in the command line: the message says which flag to fix. Exit code 2. */
export class UsageError extends Error {}

/** The server or the network stopped the command: the message says what to do. Exit code 1. */
export class ClientFailure extends Error {}

export interface ServerFlags {
  url?: string;
  apiKey?: string;
}

export interface ServerSettings {
  /** The server's base URL, without a trailing slash or the API path. */
  serverUrl: string;
  apiKey: string;
}

const API_PATH_SUFFIX = new RegExp(`${API_BASE.replaceAll('/', '\\/')}\\/?$`);

/** --url and --api-key, the key falling back to HELPDESK_API_KEY. */
export function serverSettings(flags: ServerFlags, env: NodeJS.ProcessEnv | undefined, command: string): ServerSettings {
  const text = flags.url ?? DEFAULT_SERVER_URL;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url must be the server's base URL, like ${DEFAULT_SERVER_URL}, not "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url must be an http or https URL, like ${DEFAULT_SERVER_URL}, not "${text}"`);
  // The API's own URL is what a newcomer copies from the docs; it names the same server.
  const serverUrl = `${url.origin}${url.pathname.replace(API_PATH_SUFFIX, '').replace(/\/+$/, '')}`;
  const apiKey = flags.apiKey?.trim() || loadClientSettings(env).apiKey;
  if (!apiKey) throw new UsageError(`${command} needs an API key: pass --api-key <key> or set HELPDESK_API_KEY`);
  return { serverUrl, apiKey };
}

/** `code: message` from the documented error body, or the status alone. */
export function describeAnswer(answer: ApiAnswer): string {
  const error = (answer.body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (typeof error?.code === 'string') return `${answer.status} ${error.code}${typeof error.message === 'string' ? `: ${error.message}` : ''}`;
  return `${answer.status}${typeof answer.body === 'string' && answer.body !== '' ? `: ${answer.body.slice(0, 200)}` : ''}`;
}

/**
 * 401 and 403 are about the key, whatever the call: said so, with the setting to fix. Null for
 * any other answer. Both commands need an admin key (the event stream is admin only, and so is
 * the user list trigger picks an assignee from).
 */
export function keyRefusal(answer: ApiAnswer, serverUrl: string): ClientFailure | null {
  if (answer.status === 401) {
    return new ClientFailure(`the server at ${serverUrl} does not accept this API key (401 unauthorized): set --api-key or HELPDESK_API_KEY to an admin key of that server`);
  }
  if (answer.status === 403) {
    return new ClientFailure(`this API key is not an admin's (403 forbidden from ${serverUrl}): set --api-key or HELPDESK_API_KEY to an admin key`);
  }
  return null;
}
