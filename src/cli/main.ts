/**
 * `helpdesk serve | worker | migrate`. serve runs the API and the delivery worker in one
 * process; worker runs delivery alone (several may share one PostgreSQL database); migrate
 * applies the migrations and exits.
 */
import { loadConfig, type Config } from '../config.js';
import { AppError } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';
import { createRuntime, openMigratedDatabase, type Runtime } from '../runtime.js';

const USAGE = 'usage: helpdesk <serve|worker|migrate>';

function onTermination(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
}

async function serve(config: Config, logger: Logger): Promise<void> {
  const runtime: Runtime = await createRuntime(config, { logger });
  const { printedKey } = await runtime.auth.bootstrap();
  if (printedKey) {
    // Printed once, on stdout, outside the JSON log: this is the only time it is shown.
    process.stdout.write(`\nFirst start: an admin API key was created. Store it now; it is not shown again:\n\n  ${printedKey}\n\n`);
  }
  await runtime.app.listen({ port: config.port, host: config.host });
  if (config.serveWorker) {
    await runtime.startWorker();
    logger.info({ workerId: runtime.worker.id }, 'delivery worker started');
  }
  runtime.retention.start();
  onTermination(logger, () => runtime.close());
}

async function worker(config: Config, logger: Logger): Promise<void> {
  const runtime = await createRuntime(config, { logger });
  await runtime.startWorker();
  runtime.retention.start();
  logger.info({ workerId: runtime.worker.id }, 'delivery worker started');
  onTermination(logger, () => runtime.close());
}

async function migrate(config: Config, logger: Logger): Promise<void> {
  const database = await openMigratedDatabase(config, logger);
  await database.close();
  logger.info('migrations applied');
}

export async function main(argv: readonly string[]): Promise<void> {
  const command = argv[0];
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    process.stderr.write(`helpdesk: ${error instanceof AppError ? error.message : String(error)}\n`);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel);
  const commands: Record<string, (c: Config, l: Logger) => Promise<void>> = { serve, worker, migrate };
  const run = command === undefined ? undefined : commands[command];
  if (!run) {
    process.stderr.write(`${USAGE}\n`);
    process.exit(2);
  }
  try {
    await run(config, logger);
  } catch (error) {
    logger.fatal({ err: error }, `${command} failed`);
    process.exit(1);
  }
}
