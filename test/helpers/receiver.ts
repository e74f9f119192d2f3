/** A real HTTPS webhook receiver on 127.0.0.1, with a certificate from the test CA. */
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { inject } from 'vitest';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  receivedAt: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Never answer (the connection hangs until the client gives up). */
  hang?: boolean;
}

export type Responder = (request: ReceivedRequest, index: number) => Reply;

export interface Receiver {
  /** `https://localhost:<port>` (or 127.0.0.1 with `host: '127.0.0.1'`). */
  readonly origin: string;
  url(path?: string): string;
  readonly requests: ReceivedRequest[];
  respondWith(responder: Responder): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export async function startReceiver(options: { host?: 'localhost' | '127.0.0.1'; responder?: Responder } = {}): Promise<Receiver> {
  const tls = inject('tls');
  const requests: ReceivedRequest[] = [];
  const waiters = new Set<() => void>();
  let responder: Responder = options.responder ?? (() => ({ status: 200, body: 'ok' }));
  const server: Server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const received: ReceivedRequest = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')])),
        body: Buffer.concat(chunks).toString('utf8'),
        receivedAt: Date.now(),
      };
      requests.push(received);
      const reply = responder(received, requests.length - 1);
      for (const wake of waiters) wake();
      if (reply.hang) return;
      res.writeHead(reply.status, reply.headers ?? {});
      res.end(reply.body ?? '');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const origin = `https://${options.host ?? 'localhost'}:${port}`;
  return {
    origin,
    url: (path = '/hook') => `${origin}${path}`,
    requests,
    respondWith(next) {
      responder = next;
    },
    waitForRequests(count, timeoutMs = 20_000) {
      if (requests.length >= count) return Promise.resolve(requests.slice(0, count));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`receiver got ${requests.length} requests, expected ${count}`));
        }, timeoutMs);
        const check = () => {
          if (requests.length >= count) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve(requests.slice(0, count));
          }
        };
        waiters.add(check);
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
