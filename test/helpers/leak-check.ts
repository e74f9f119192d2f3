/**
 * Runs after every test file's own hooks (a setup file's afterAll is registered first, so it runs
 * last): the file fails if it left a Helpdesk server or worker, a child process or a receiver
 * running, or any TCP server listening.
 */
import { afterAll } from 'vitest';
import { stillOpen } from './leaks.js';

const listeningServers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'TCPServerWrap').length;

/**
 * A server whose close() has resolved may still hold its handle until the event loop's next
 * close phase: give the loop a few turns (bounded) before counting what is left.
 */
async function settledListeningServers(): Promise<number> {
  for (let turn = 0; turn < 50 && listeningServers() > 0; turn += 1) await new Promise((resolve) => setTimeout(resolve, 10));
  return listeningServers();
}

afterAll(async () => {
  const left = stillOpen();
  const listening = await settledListeningServers();
  if (left.length > 0 || listening > 0) {
    const parts = [...left, ...(listening > 0 ? [`${listening} TCP server(s) still listening`] : [])];
    throw new Error(`This test file left running: ${parts.join('; ')}. Stop them in an afterAll/afterEach or a finally block.`);
  }
});
