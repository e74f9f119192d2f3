// The peer: what a Node team would otherwise build. graphile-worker 0.17 on the same PostgreSQL,
// one job per delivery, each job signed like Standard Webhooks and POSTed with the same undici
// Pool as the raw limit. EVENTS jobs are queued before the runner starts (a backlog, as in the
// throughput scenario), then one runner in its own process drains them at graphile-worker's
// fastest documented setting (local queue, batched completion).
//
// Run as `node bench/scenarios/peer.mjs worker <json settings>` this file is that runner: it
// tells its parent over IPC once it runs, and answers 'stats' with what its local queue fetched.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Logger, makeWorkerUtils, run as runWorker, runMigrations } from 'graphile-worker';
import { Pool } from 'undici';
import { dropDatabase, measureDrain, newDatabaseUrl, postSigned } from '../lib.mjs';

// 64 in flight, as the raw limit. The local queue holds a few batches' worth of jobs per fetch,
// as in graphile-worker's own performance setup (https://worker.graphile.org/docs/performance).
const CONCURRENCY = 64;
const LOCAL_QUEUE_SIZE = 500;
const ADD_BATCH = 5000;

export async function run(ctx) {
  const url = await newDatabaseUrl('postgres');
  try {
    await queueJobs(url, ctx.events);
    const before = await ctx.receiver.count();
    const worker = await startWorker({ connectionString: url, origin: ctx.receiver.origin, ca: ctx.tls.caPem });
    try {
      if (!worker.localQueueEnabled) throw new Error('graphile-worker did not start its local queue');
      const rate = await measureDrain(ctx.receiver, before, ctx.events);
      const { largestFetch } = await worker.ask('stats');
      return {
        deliveriesPerSecond: rate,
        ratioToRawLimit: rate / ctx.raw,
        concurrency: CONCURRENCY,
        localQueueSize: LOCAL_QUEUE_SIZE,
        largestLocalQueueFetch: largestFetch,
      };
    } finally {
      await worker.stop();
    }
  } finally {
    await dropDatabase(url);
  }
}

/** A ~1 KB ticket.created event, the size of Helpdesk's. */
function eventBody() {
  const ticket = {
    id: `tkt_${randomBytes(12).toString('hex')}`,
    subject: 'benchmark ticket',
    description: 'x'.repeat(600),
    status: 'open',
    priority: 'normal',
    assigneeId: null,
    requesterEmail: null,
    tags: ['bench'],
    customFields: {},
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
  };
  return JSON.stringify({ event: 'ticket.created', timestamp: new Date().toISOString(), data: { ticket } });
}

/** Queues `events` deliver jobs through graphile-worker's bulk add_jobs, a batch per query. */
async function queueJobs(connectionString, events) {
  await runMigrations({ connectionString, logger: quietLogger });
  const utils = await makeWorkerUtils({ connectionString, logger: quietLogger });
  try {
    for (let queued = 0; queued < events; queued += ADD_BATCH) {
      const specs = Array.from({ length: Math.min(ADD_BATCH, events - queued) }, () => ({
        identifier: 'deliver',
        payload: { id: `msg_${randomBytes(12).toString('hex')}`, body: eventBody() },
      }));
      await utils.addJobs(specs);
    }
  } finally {
    await utils.release();
  }
}

/** Spawns the runner process and waits until it runs. */
async function startWorker(settings) {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'worker', JSON.stringify(settings)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const ready = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    exited.then((code) => reject(new Error(`graphile-worker runner exited with ${code}`)));
  });
  return {
    localQueueEnabled: ready.localQueueEnabled,
    ask: (message) =>
      new Promise((resolve) => {
        child.once('message', resolve);
        child.send(message);
      }),
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

// Warnings and errors only: the info lines would interleave with the harness's output.
const quietLogger = new Logger(() => (level, message) => {
  if (level === 'error' || level === 'warning') process.stderr.write(`graphile-worker ${level}: ${message}\n`);
});

/** The same signed undici POST as the raw limit; a non-2xx throws so graphile-worker retries. */
function deliverTask(pool) {
  const key = randomBytes(32);
  return async ({ id, body }) => {
    const status = await postSigned(pool, key, id, body);
    if (status < 200 || status > 299) throw new Error(`receiver answered ${status}`);
  };
}

/** The child: one graphile-worker runner. Its local queue's events prove the setting took. */
async function runnerProcess({ connectionString, origin, ca }) {
  const pool = new Pool(origin, { connections: CONCURRENCY, connect: { ca } });
  const events = new EventEmitter();
  let localQueueEnabled = false;
  let largestFetch = 0;
  events.on('localQueue:init', () => {
    localQueueEnabled = true;
  });
  events.on('localQueue:getJobs:complete', ({ jobs }) => {
    largestFetch = Math.max(largestFetch, jobs.length);
  });
  process.on('message', (message) => {
    if (message === 'stats') process.send({ largestFetch });
  });
  await runWorker({
    connectionString,
    concurrency: CONCURRENCY,
    // graphile-worker warns below `concurrency`; with the local queue most stay idle.
    maxPoolSize: CONCURRENCY + 2,
    pollInterval: 50,
    noHandleSignals: true,
    logger: quietLogger,
    events,
    taskList: { deliver: deliverTask(pool) },
    preset: { worker: { localQueue: { size: LOCAL_QUEUE_SIZE }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
  });
  process.send({ localQueueEnabled });
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'worker') await runnerProcess(JSON.parse(process.argv[3]));
