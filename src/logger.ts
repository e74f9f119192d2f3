import { pino, type Logger } from 'pino';

/** Paths never written to a log line, whatever the level. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'signingSecret',
  '*.signingSecret',
  'key',
  '*.key',
];

export function createLogger(level: string): Logger {
  return pino({ level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } });
}

export type { Logger };
