/**
 * Starts tracing as the configuration says. The OpenTelemetry SDK is imported here, dynamically,
 * and only when tracing is on: off, a process never loads it.
 */
import type { Logger } from 'pino';
import type { DatabaseConfig, TracingConfig } from '../config.js';
import { TRACING_OFF, type Tracing } from './tracing.js';

/**
 * Tracing as `config` sets it: TRACING_OFF when null, otherwise the OpenTelemetry SDK, loaded
 * now and only now. `database` is what the transaction spans say of it.
 */
export async function startTracing(config: TracingConfig | null, database: DatabaseConfig, logger: Logger): Promise<Tracing> {
  if (config === null) return TRACING_OFF;
  const { OpenTelemetryTracing } = await import('./opentelemetry-tracing.js');
  return new OpenTelemetryTracing(config, database, logger);
}
