/**
 * The outbound module against real sockets: every way a receiver can fail is told apart and
 * becomes a recorded kind of failure; the status line alone decides success.
 */
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { OutboundHttp } from '../../../src/outbound/http-client.js';
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

describe('outbound HTTP', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  function client(options: Partial<ConstructorParameters<typeof OutboundHttp>[0]> = {}): OutboundHttp {
    const http = new OutboundHttp({ allowPrivateTargets: true, extraCaCertificates: [inject('tls').ca], ...options });
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
});
