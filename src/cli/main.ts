/**
 * `helpdesk serve | worker | migrate | reseal | listen | trigger`. serve runs the API and the
 * delivery worker in one process; worker runs delivery alone (several may share one PostgreSQL
 * database); migrate applies the migrations and exits; reseal moves every sealed value to the
 * first secret key (a rotation); listen and trigger are API clients of a running
 * server, for trying a receiver on a developer's machine. Every command answers --help and
 * --version without reading the configuration or touching the database (docs/configuration.md,
 * "How configuration is read").
 */
import { Command, InvalidArgumentError, Option, type CommanderError } from 'commander';
import { DEFAULT_SERVER_URL, HELPDESK_VERSION, loadConfig, unknownSettingWarnings, type Config } from '../config.js';
import { AppError } from '../errors.js';
import { TICKET_EVENT_TYPES } from '../events/event-types.js';
import { createLogger, type Logger } from '../logger.js';
import { createRuntime, migrateDatabase, openMigratedDatabase, type Runtime } from '../runtime.js';
import { openSecretBox } from '../secrets/secret-box.js';
import { ClientFailure, EXIT_FAILED, EXIT_USAGE, UsageError, type ServerFlags } from './api-client-settings.js';
import type { ListenFlags } from './listen.js';
import { DEFAULT_RESEAL_BATCH_SIZE, describeResealed, progressPrinter, resealDatabase } from './reseal.js';
import { describeStartupFailure } from './startup-failure.js';

const CONFIGURATION_HELP = `
Configuration comes from HELPDESK_* environment variables, read once at start;
docs/configuration.md lists them all. The ones most often set:
  HELPDESK_PORT, HELPDESK_HOST        where the API listens (default 127.0.0.1:8080)
  HELPDESK_DATABASE_URL               sqlite:<path> (default sqlite:./data/helpdesk.db) or postgres://...
  HELPDESK_SECRET_KEY                 the keys that seal signing secrets, the sealing one first; the same in every process
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
    logger.info({ workerId: runtime.worker.id, sendingThread: runtime.sendingThread }, 'delivery worker started');
  }
  runtime.retention.start();
  const base = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  logger.info(`Helpdesk ${config.version} is ready: console ${base}/admin/, API ${base}/helpdesk/api/v1, API docs ${base}/docs, health ${base}/healthz`);
  onTermination(logger, () => runtime.close());
}

async function worker(config: Config, logger: Logger): Promise<void> {
  const runtime = await createRuntime(config, { logger });
  // Before any delivery is claimed: a port in use stops the start, with nothing left half-done.
  const base = config.workerPort === null ? null : await runtime.listenWorkerEndpoints(config.workerPort, config.host);
  await runtime.startWorker();
  runtime.retention.start();
  logger.info({ workerId: runtime.worker.id, sendingThread: runtime.sendingThread }, base === null ? 'delivery worker started (HELPDESK_WORKER_PORT=off: no /healthz or /metrics)' : `delivery worker started: health ${base}/healthz, metrics ${base}/metrics`);
  onTermination(logger, () => runtime.close());
}

/** Plain lines on stdout: this is the command's answer, not a log. */
async function migrate(config: Config, logger: Logger): Promise<void> {
  const { applied, current } = await migrateDatabase(config, logger);
  if (applied.length === 0) process.stdout.write(`No migrations were pending: the database is at ${current}.\n`);
  else process.stdout.write(`Applied ${applied.length} migration${applied.length === 1 ? '' : 's'}: ${applied.join(', ')}. The database is at ${current}.\n`);
}

/**
 * Progress on stdout (a bar on a terminal, a line per batch elsewhere), the answer last. A
 * failure part-way leaves every value openable by the keys given: running it again resumes.
 */
async function reseal(config: Config, logger: Logger, batchSize: number): Promise<void> {
  const database = await openMigratedDatabase(config, logger);
  try {
    const box = await openSecretBox(database.db, database.capabilities, config.secretKey, logger);
    const progress = progressPrinter(process.stdout, process.stdout.isTTY === true, box.keyId);
    const resealed = await resealDatabase(database.db, database.capabilities, box, { batchSize, onProgress: (update) => progress.update(update) });
    progress.finish(describeResealed(resealed, box.keyId));
  } finally {
    await database.close();
  }
}

function parseBatchSize(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 10_000) throw new InvalidArgumentError('must be a whole number of rows from 1 to 10000');
  return Number(value);
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
    process.stderr.write(`helpdesk: ${command} failed: ${describeStartupFailure(error, config, command === 'worker' ? 'HELPDESK_WORKER_PORT' : 'HELPDESK_PORT')}\n`);
    process.exit(1);
  }
}

/**
 * listen and trigger are API clients: they never read the server's configuration. A mistake in
 * the command line exits 2 (after the line that says which), what the server or the network
 * said exits 1.
 */
function failClientCommand(command: string, error: unknown): never {
  if (error instanceof UsageError) {
    process.stderr.write(`helpdesk ${command}: ${error.message}\n(run "helpdesk ${command} --help" for its options)\n`);
    process.exit(EXIT_USAGE);
  }
  if (error instanceof ClientFailure) {
    process.stderr.write(`helpdesk ${command}: ${error.message}\n`);
    process.exit(EXIT_FAILED);
  }
  throw error;
}

/** Commander's own usage errors (an unknown option, a missing argument) exit 2 like ours. */
function exitOnUsageError(error: CommanderError): never {
  process.exit(error.exitCode === 0 ? 0 : EXIT_USAGE);
}

// listen and trigger are loaded by their own commands: with them, serve would load an HTTP
// client (undici) that only these API clients use (docs/deployment.md, "Start-up").
async function runListen(flags: ListenFlags, env: NodeJS.ProcessEnv | undefined): Promise<void> {
  const { listen, listenOptions } = await import('./listen.js');
  let options;
  try {
    options = listenOptions(flags, env);
  } catch (error) {
    failClientCommand('listen', error);
  }
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  try {
    await listen(options, process.stdout, stop.signal);
  } catch (error) {
    failClientCommand('listen', error);
  }
  process.exit(0);
}

async function runTrigger(type: string | undefined, flags: ServerFlags, env: NodeJS.ProcessEnv | undefined): Promise<void> {
  const { trigger, triggerOptions } = await import('./trigger.js');
  try {
    const options = triggerOptions(type, flags, env);
    const { ticketId, events } = await trigger(options);
    process.stdout.write(`${ticketId}\n`);
    process.stderr.write(`Made ticket ${ticketId} on ${options.serverUrl}, with the events ${events.join(', ')}\n`);
  } catch (error) {
    failClientCommand('trigger', error);
  }
}

const CLIENT_HELP = `
The API key comes from --api-key or HELPDESK_API_KEY; it must be an admin key of that server.
Exit codes: 0 done (listen: stopped by Ctrl-C or SIGTERM), 1 the server or the network stopped it
(a refused key, an unreachable server), 2 a mistake in the command line. docs/configuration.md
describes the output.`;

function addClientCommands(program: Command, env: NodeJS.ProcessEnv | undefined): void {
  // Its own options and arguments first, in --help, then the server's.
  const clientCommand = (name: string, summary: string, details: string, own: (command: Command) => Command) =>
    own(program.command(name).summary(summary).description(`${summary[0]!.toUpperCase()}${summary.slice(1)}.\n\n${details}`))
      .option('--url <base URL>', 'the Helpdesk server', DEFAULT_SERVER_URL)
      .option('--api-key <key>', 'an admin API key of that server (default: HELPDESK_API_KEY)')
      .version(HELPDESK_VERSION, '-V, --version', 'print the version and exit')
      .helpOption('-h, --help', 'print this help and exit')
      .addHelpText('after', CLIENT_HELP)
      .showHelpAfterError(`(run "helpdesk ${name} --help" for its options)`)
      .exitOverride(exitOnUsageError);

  clientCommand(
    'listen',
    "forward the server's events, signed, to a receiver on this machine",
    'Follows the event stream and POSTs each event to --forward-to (http or https, localhost included), signed ' +
      'like a webhook delivery with a secret printed on the first line: "Ready. Signing secret: whsec_...". ' +
      "Prints one line per event with the receiver's answer; a failed forward is printed, not retried. " +
      'Reconnects by itself and resumes after the last event it received. Ctrl-C stops it (exit 0).',
    (command) =>
      command
        .option('--forward-to <url>', 'the receiver each event is POSTed to (required)')
        .option('--events <types>', `only these event types, comma-separated: ${TICKET_EVENT_TYPES.join(', ')} (default: all)`)
        .option('--secret <secret>', 'sign with this secret (whsec_...) instead of a new random one, e.g. the one a receiver already has'),
  ).action((flags: ListenFlags) => runListen(flags, env));

  clientCommand(
    'trigger',
    'make a sample ticket change that emits an event, and print the ticket id',
    `Creates a sample ticket and changes it so that the server emits <event type>, one of ${TICKET_EVENT_TYPES.join(', ')}. ` +
      'The ticket id goes to stdout; the events it made, to stderr.',
    // Optional to commander so that a missing type gets the list of types, like an unknown one.
    (command) => command.argument('[event type]', `one of ${TICKET_EVENT_TYPES.join(', ')}`),
  ).action((type: string | undefined, flags: ServerFlags) => runTrigger(type, flags, env));
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
      details:
        'Applies pending migrations, serves /healthz and /metrics on HELPDESK_WORKER_PORT (default 8081, off for none), ' +
        'then delivers webhooks until SIGTERM or Ctrl-C (exit 0).',
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
  program
    .command('reseal')
    .summary('move every sealed value to the first key of HELPDESK_SECRET_KEY, so that the others can be dropped')
    .description(
      'Move every sealed value to the first key of HELPDESK_SECRET_KEY, so that the others can be dropped.\n\n' +
        'Signing secrets (current and previous), custom header values and stored idempotent responses are opened with ' +
        'whichever listed key sealed them and sealed again under the first, in batches. Safe while servers run, and to run ' +
        'again after an interruption. Prints the counts as it goes (a progress bar on a terminal); exits 0 once every value ' +
        'is under the first key, 1 with the reason otherwise. docs/configuration.md, "Rotating the secret key", has the procedure.',
    )
    // Small batches let the tests stop it part-way; the default suits every database.
    .addOption(new Option('--batch-size <rows>', 'rows per transaction').argParser(parseBatchSize).default(DEFAULT_RESEAL_BATCH_SIZE).hideHelp())
    .version(HELPDESK_VERSION, '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .addHelpText('after', CONFIGURATION_HELP)
    .exitOverride(exitOnUsageError)
    .action((flags: { batchSize: number }) => run('reseal', (config, logger) => reseal(config, logger, flags.batchSize), env));
  addClientCommands(program, env);
  return program;
}

export async function main(argv: readonly string[], env?: NodeJS.ProcessEnv): Promise<void> {
  await buildProgram(env).parseAsync([...argv], { from: 'user' });
}
