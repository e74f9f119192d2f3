/**
 * The outbound module against real sockets: every way a receiver can fail is told apart and
 * becomes a recorded kind of failure; the status line alone decides success. Each case runs on
 * the client in this thread and on the sending thread (the built module: a thread cannot load
 * TypeScript), which the server uses with HELPDESK_SENDING_THREAD=true.
 */
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OutboundHttp, type OutboundClient, type OutboundHttpOptions } from '../../../src/outbound/http-client.js';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';

/** A TLS server that answers with whatever raw bytes the test gives it. */
async function rawTlsServer(onSocket: (socket: TLSSocket) => void): Promise<{ url: string; close(): Promise<void> }> {
  const tls = inject('tls');
  const sockets = new Set<TLSSocket>();
  const server: TlsServer = createTlsServer({ cert: tls.cert, key: tls.key }, (socket) => {
    sockets.add(socket);
    socket.once('data', () => onSocket(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://localhost:${(server.address() as AddressInfo).port}/hook`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

type SendingThreadModule = typeof import('../../../src/outbound/sending-thread.js');
const built = (await import(pathToFileURL(resolve('dist/outbound/sending-thread.js')).href)) as SendingThreadModule;

const CLIENTS: [string, (options: OutboundHttpOptions) => OutboundClient][] = [
  ['in this thread', (options) => new OutboundHttp(options)],
  ['from the sending thread', (options) => new built.SendingThread(options)],
];

describe.each(CLIENTS)('outbound HTTP %s', (_name, makeClient) => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  function client(options: Partial<OutboundHttpOptions> = {}): OutboundClient {
    const http = makeClient({ allowPrivateTargets: true, extraCaCertificates: [inject('tls').ca], ...options });
    cleanups.push(() => http.close());
    return http;
  }
  async function receiver(options: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
    const r = await startReceiver(options);
    cleanups.push(() => r.close());
    return r;
  }
  async function raw(onSocket: (socket: TLSSocket) => void) {
    const server = await rawTlsServer(onSocket);
    cleanups.push(() => server.close());
    return server.url;
  }

  it('keeps at most 20 KB of the body, with status and headers', async () => {
    const target = await receiver({ responder: () => ({ status: 200, headers: { 'x-answer': '42' }, body: 'a'.repeat(50_000) }) });
    const response = await client().post(target.url(), { 'content-type': 'application/json' }, '{}');
    expect(response).toMatchObject({ statusCode: 200, error: null });
    expect(response.body).toHaveLength(20 * 1024);
    expect(response.headers?.['x-answer']).toBe('42');
  });

  it('lets the status line decide: a 2xx whose body breaks off is a success', async () => {
    const url = await raw((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial');
      setImmediate(() => socket.destroy());
    });
    const response = await client().post(url, {}, '{}');
    expect(response).toMatchObject({ statusCode: 200, error: null });
  });

  it('records a malformed answer as a failed attempt, not an unrecorded crash', async () => {
    const url = await raw((socket) => socket.end('HELLO THERE\r\n\r\n'));
    const response = await client().post(url, {}, '{}');
    expect(response).toMatchObject({ statusCode: null, error: 'connection_reset' });
  });

  it('tells the failures apart', async () => {
    const hanging = await receiver({ responder: () => ({ status: 200, hang: true }) });
    expect((await client({ totalTimeoutMs: 300 }).post(hanging.url(), {}, '{}')).error).toBe('timeout');

    const closed = await receiver({});
    const closedUrl = closed.url();
    await closed.close();
    expect((await client().post(closedUrl, {}, '{}')).error).toBe('connection_refused');

    const untrusted = await receiver({});
    expect((await client({ extraCaCertificates: undefined }).post(untrusted.url(), {}, '{}')).error).toBe('tls');

    expect((await client().post('https://no-such-host.invalid/hook', {}, '{}')).error).toBe('dns');

    const ok = await receiver({});
    expect((await client({ allowPrivateTargets: false }).post(ok.url(), {}, '{}')).error).toBe('blocked_address');
    expect((await client({ allowPrivateTargets: false }).post('https://127.0.0.1:9/hook', {}, '{}')).error).toBe('blocked_address');
    expect((await client({ allowPrivateTargets: false }).post('https://[::ffff:127.0.0.1]:9/hook', {}, '{}')).error).toBe('blocked_address');
    expect(ok.requests).toHaveLength(0);
  });

  it('refuses a target that is not https, as a thrown error with its message', async () => {
    await expect(client().post('http://localhost:9/hook', {}, '{}')).rejects.toThrow('refusing a non-https target: http:');
  });

  it('stops waiting when the caller abandons the attempt', async () => {
    const hanging = await receiver({ responder: () => ({ status: 200, hang: true }) });
    const abandon = new AbortController();
    const answer = client().post(hanging.url(), {}, '{}', abandon.signal);
    await hanging.waitForRequests(1);
    abandon.abort();
    expect((await answer).error).toBe('timeout');
  });

  it('answers each of many requests made at once with its own response', async () => {
    const target = await receiver({ responder: (request) => ({ status: 200, body: `echo ${request.body}` }) });
    const http = client();
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => http.post(target.url(), { 'content-type': 'application/json' }, `{"n":${i}}`)));
    expect(answers.map((a) => a.body)).toEqual(Array.from({ length: 200 }, (_, i) => `echo {"n":${i}}`));
    expect(target.requests).toHaveLength(200);
  });
});

describe('the sending thread', () => {
  it('is available in the build, which serve and worker run, and not beside the sources', async () => {
    expect(built.sendingThreadAvailable()).toBe(true);
    const sources = await import('../../../src/outbound/sending-thread.js');
    expect(sources.sendingThreadAvailable()).toBe(false);
  });

  it('settles what is still waiting when it is closed, never as a success, and refuses new requests', async () => {
    const hanging = await startReceiver({ responder: () => ({ status: 200, hang: true }) });
    const http = new built.SendingThread({ allowPrivateTargets: true, extraCaCertificates: [inject('tls').ca] });
    try {
      const answer = http.post(hanging.url(), {}, '{}');
      await hanging.waitForRequests(1);
      await http.close();
      // The thread's connections close first: the request then ends as a failed attempt, as it
      // does inline; one still unanswered when the thread ends is rejected.
      const outcome = await answer.then(
        (response) => response.error,
        (error: Error) => error.message,
      );
      expect(['connection_reset', 'timeout', 'the sending thread was closed before the answer came']).toContain(outcome);
      await expect(http.post(hanging.url(), {}, '{}')).rejects.toThrow('the sending thread is closed');
    } finally {
      await hanging.close();
    }
  });

  it('refuses a custom resolver, which cannot cross to a thread', () => {
    expect(() => new built.SendingThread({ allowPrivateTargets: false, lookup: () => undefined })).toThrow('a custom lookup cannot be used by the sending thread');
  });
});
