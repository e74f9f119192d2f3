import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type pretty from 'pino-pretty';

// pino-pretty (a dozen modules) is loaded only for the pretty format, which a server in
// production, logging JSON, never asks for (docs/deployment.md, "Start-up"); synchronously, so
// that createLogger stays synchronous.
const require = createRequire(import.meta.url);

/** How log lines are written: JSON lines, or readable lines for a person at a terminal. */
export type LogFormat = 'json' | 'pretty';

/** Paths never written to a log line, whatever the level. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'signingSecret',
  '*.signingSecret',
  'signingSecrets',
  '*.signingSecrets',
  'secret',
  '*.secret',
  'key',
  '*.key',
  'adminToken',
  '*.adminToken',
];

/**
 * JSON lines on stdout (or `destination`, for tests that read what was logged), or with
 * `format: 'pretty'` readable lines for a person at a terminal. Pretty lines are written
 * synchronously: they are few, and a line explaining an exit must not be lost to it.
 */
export function createLogger(level: string, destination?: DestinationStream, format: LogFormat = 'json'): Logger {
  const options = { level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
  if (destination) return pino(options, destination);
  if (format === 'pretty') {
    // The request line's fields are all in its message; the request id goes in front of it.
    const lines = (require('pino-pretty') as typeof pretty)({ colorize: true, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,reqId,request', messageFormat: '{if reqId}{reqId} {end}{msg}' });
    return pino(options, lines);
  }
  return pino(options);
}

export type { Logger };
