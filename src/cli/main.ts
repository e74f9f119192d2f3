/**
 * `helpdesk serve | worker | migrate`. serve runs the API and the delivery worker in one
 * process; worker runs delivery alone (several may share one PostgreSQL database); migrate
 * applies the migrations and exits. Every command answers --help and --version without reading
 * the configuration or touching the database (docs/configuration.md, "How configuration is read").
 */
import { Command } from 'commander';
import { HELPDESK_VERSION, loadConfig, unknownSettingWarnings, type Config } from '../config.js';
import { AppError } from '../errors.js';
import { createLogger, type Logger } from '../logger.js';
import { createRuntime, migrateDatabase, type Runtime } from '../runtime.js';
import { describeStartupFailure } from './startup-failure.js';

const CONFIGURATION_HELP = `
Configuration comes from HELPDESK_* environment variables, read once at start;
docs/configuration.md lists them all. The ones most often set:
  HELPDESK_PORT, HELPDESK_HOST        where the API listens (default 127.0.0.1:8080)
  HELPDESK_DATABASE_URL               sqlite:<path> (default sqlite:./data/helpdesk.db) or postgres://...
  HELPDESK_SECRET_KEY                 the key that seals signing secrets; the same in every process
  HELPDESK_LOG_LEVEL, HELPDESK_LOG_FORMAT   info by default; pretty on a terminal, json elsewhere`;

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

/** Printed on stderr before anything starts: what a newcomer would otherwise never see. */
function startupWarnings(config: Config, env: NodeJS.ProcessEnv | undefined, command: string): string[] {
  const warnings = unknownSettingWarnings(env);
  if (command !== 'migrate' && config.database.kind === 'postgres' && config.secretKey.kind === 'file' && !config.secretKey.chosen) {
    warnings.push(
      `HELPDESK_SECRET_KEY is not set, so signing secrets are sealed with the key file ${config.secretKey.path} on this machine ` +
        '(generated there if this database has none). Every process that shares this PostgreSQL database needs the same key: ' +
        'set HELPDESK_SECRET_KEY to it in each (docs/deployment.md)',
    );
  }
  return warnings;
}

async function serve(config: Config, logger: Logger): Promise<void> {
  const runtime: Runtime = await createRuntime(config, { logger });
  const { printedKey } = await runtime.auth.bootstrap();
  if (printedKey) {
    // Printed once, on stdout, outside the log: this is the only time it is shown.
    process.stdout.write(`\nFirst start: an admin API key was created. Store it now; it is not shown again:\n\n  ${printedKey}\n\n`);
  }
  await runtime.app.listen({ port: config.port, host: config.host });
  if (config.serveWorker) {
    await runtime.startWorker();
    logger.info({ workerId: runtime.worker.id }, 'delivery worker started');
  }
  runtime.retention.start();
  const base = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  logger.info(`Helpdesk ${config.version} is ready: console ${base}/admin/, API ${base}/helpdesk/api/v1, API docs ${base}/docs, health ${base}/healthz`);
  onTermination(logger, () => runtime.close());
}

async function worker(config: Config, logger: Logger): Promise<void> {
  const runtime = await createRuntime(config, { logger });
  await runtime.startWorker();
  runtime.retention.start();
  logger.info({ workerId: runtime.worker.id }, 'delivery worker started');
  onTermination(logger, () => runtime.close());
}

/** Plain lines on stdout: this is the command's answer, not a log. */
async function migrate(config: Config, logger: Logger): Promise<void> {
  const { applied, current } = await migrateDatabase(config, logger);
  if (applied.length === 0) process.stdout.write(`No migrations were pending: the database is at ${current}.\n`);
  else process.stdout.write(`Applied ${applied.length} migration${applied.length === 1 ? '' : 's'}: ${applied.join(', ')}. The database is at ${current}.\n`);
}

/**
 * Runs a command with the configuration read once. Everything that stops it from starting (bad
 * configuration, an unreachable or wrong database, a port in use) is one plain line on stderr and
 * exit code 1; the details, stack included, go to the log at debug level.
 */
async function run(command: string, body: (config: Config, logger: Logger) => Promise<void>, env: NodeJS.ProcessEnv | undefined): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(env, process.stdout.isTTY === true);
  } catch (error) {
    process.stderr.write(`helpdesk: ${error instanceof AppError ? error.message : String(error)}\n`);
    process.exit(1);
  }
  for (const warning of startupWarnings(config, env, command)) process.stderr.write(`helpdesk: warning: ${warning}\n`);
  const logger = createLogger(config.logLevel, undefined, config.logFormat);
  try {
    await body(config, logger);
  } catch (error) {
    logger.debug({ err: error }, `${command} failed to start`);
    process.stderr.write(`helpdesk: ${command} failed: ${describeStartupFailure(error, config)}\n`);
    process.exit(1);
  }
}

/** `env`: the environment to read instead of the process's own (config.ts reads that by default). */
function buildProgram(env?: NodeJS.ProcessEnv): Command {
  const program = new Command('helpdesk')
    .description('Helpdesk: a helpdesk API server with signed, durable outgoing webhooks.')
    .version(HELPDESK_VERSION, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .helpCommand('help [command]', 'print the help of a command')
    .showSuggestionAfterError(true)
    .showHelpAfterError('(run "helpdesk --help" for the commands)')
    .addHelpText('after', `\nStart with "npx helpdesk serve", then open http://127.0.0.1:8080/admin/.\n${CONFIGURATION_HELP}`);

  const commands: { name: string; summary: string; details: string; body: (config: Config, logger: Logger) => Promise<void> }[] = [
    {
      name: 'serve',
      summary: 'run the API, the admin console and a delivery worker in one process',
      details:
        'Applies pending migrations, then serves the API at /helpdesk/api/v1, the console at /admin/, ' +
        'the OpenAPI document at /docs, /healthz and /metrics, and delivers webhooks (unless HELPDESK_SERVE_WORKER=false). ' +
        'On the first start of an empty database it prints an admin key. SIGTERM or Ctrl-C stops it cleanly (exit 0).',
      body: serve,
    },
    {
      name: 'worker',
      summary: 'run a delivery worker alone, without the API (several may share one PostgreSQL database)',
      details: 'Applies pending migrations, then delivers webhooks until SIGTERM or Ctrl-C (exit 0).',
      body: worker,
    },
    {
      name: 'migrate',
      summary: 'apply pending database migrations, say which, and exit',
      details: 'serve and worker also migrate when they start; run this to migrate ahead of a rollout.',
      body: migrate,
    },
  ];
  for (const { name, summary, details, body } of commands) {
    program
      .command(name)
      .summary(summary)
      .description(`${summary[0]!.toUpperCase()}${summary.slice(1)}.\n\n${details}`)
      .version(HELPDESK_VERSION, '-V, --version', 'print the version and exit')
      .helpOption('-h, --help', 'print this help and exit')
      .addHelpText('after', CONFIGURATION_HELP)
      .action(() => run(name, body, env));
  }
  return program;
}

export async function main(argv: readonly string[], env?: NodeJS.ProcessEnv): Promise<void> {
  await buildProgram(env).parseAsync([...argv], { from: 'user' });
}
