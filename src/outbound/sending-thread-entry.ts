/**
 * The sending thread (sending-thread.ts): an OutboundHttp of its own, fed batches of requests by
 * the main thread and answering in batches. Every rule of the outbound module holds here as it
 * does inline: this is the same client, on another core.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { OutboundHttp, type OutboundHttpOptions } from './http-client.js';
import type { SendingThreadReply, SendingThreadRequest } from './sending-thread.js';

const port = parentPort;
if (!port) throw new Error('sending-thread-entry.js runs as a worker thread only');
const http = new OutboundHttp(workerData as OutboundHttpOptions);
// Loaded before it says it is ready: the main thread's worker claims nothing until then.
await http.prepare();
port.postMessage('ready');
const cancels = new Map<number, AbortController>();
let replies: SendingThreadReply[] = [];

function reply(answer: SendingThreadReply): void {
  replies.push(answer);
  // Answers that arrive in one turn of the loop go back in one message.
  if (replies.length === 1) setImmediate(flush);
}

function flush(): void {
  const batch = replies;
  replies = [];
  port!.postMessage(batch);
}

port.on('message', (message: SendingThreadRequest) => {
  if (message.kind === 'close') {
    void http.close().finally(() => port.postMessage('closed'));
    return;
  }
  for (const { id, url, headers, body } of message.posts) {
    const cancel = new AbortController();
    cancels.set(id, cancel);
    http
      .post(url, headers, body, cancel.signal)
      .then(
        (response) => reply({ id, response }),
        (error: unknown) => {
          const { name, message: text, code } = error as { name?: unknown; message?: unknown; code?: unknown };
          reply({ id, error: { name: String(name ?? 'Error'), message: String(text ?? error), ...(typeof code === 'string' ? { code } : {}) } });
        },
      )
      .finally(() => cancels.delete(id));
  }
  // After the posts: a request abandoned in the turn it was made comes in the same batch.
  for (const id of message.cancels) cancels.get(id)?.abort(new DOMException('the attempt was abandoned', 'AbortError'));
});
