import { pino, type DestinationStream, type Logger } from 'pino';

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

/** JSON lines on stdout (or `destination`, for tests that read what was logged). */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}

export type { Logger };
