/**
 * A real HTTPS webhook receiver on 127.0.0.1, with a certificate from the test CA. For the fault
 * suites it can also take an answer over (drip bytes, never finish, reset the TCP connection),
 * listen on another loopback address or port, or present a certificate nobody trusts; and
 * startTcpServer gives a bare TCP listener for faults below TLS.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  receivedAt: number;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Never answer (the connection hangs until the client gives up). */
  hang?: boolean;
}

/** The connection a request came on, below TLS. */
export interface Connection {
  /** Drops the connection with a TCP reset (RST), whatever is still unsent. */
  reset(): void;
}

/**
 * The answer taken over: the fault writes what it likes to `response` (or raw bytes to
 * `response.socket`, under HTTP but inside TLS), as slowly as it likes, and may reset.
 */
export interface TakeOver {
  takeOver: (response: ServerResponse, connection: Connection) => void;
}

export type Reply = Answer | TakeOver;

export type Responder = (request: ReceivedRequest, index: number) => Reply;

export interface Receiver {
  /** `https://localhost:<port>` (or 127.0.0.1 with `host: '127.0.0.1'`). */
  readonly origin: string;
  readonly port: number;
  url(path?: string): string;
  readonly requests: ReceivedRequest[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Requests received whose answer is neither finished nor cut off: the ones held right now. */
  readonly unanswered: number;
  respondWith(responder: Responder): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<ReceivedRequest[]>;
  close(): Promise<void>;
}

export interface ReceiverOptions {
  /** The host of `origin` (default `localhost`); the certificate names localhost and 127.0.0.1. */
  host?: string;
  responder?: Responder;
  /** The address to listen on (default 127.0.0.1); on Linux all of 127/8 is loopback. */
  bindAddress?: string;
  /** The port to listen on (default: any free one). */
  port?: number;
  /** Another certificate than the test CA's leaf (see untrustedCertificate). */
  certificate?: { cert: string; key: string };
}

export async function startReceiver(options: ReceiverOptions = {}): Promise<Receiver> {
  const tls = inject('tls');
  const requests: ReceivedRequest[] = [];
  const waiters = new Set<() => void>();
  let responder: Responder = options.responder ?? (() => ({ status: 200, body: 'ok' }));
  let connections = 0;
  let unanswered = 0;
  // The TCP sockets under the TLS ones, by peer, so that a fault can reset the connection.
  const tcpSockets = new Map<string, Socket>();
  const peer = (socket: Socket) => `${socket.remoteAddress}:${socket.remotePort}`;
  const server: Server = createServer(options.certificate ?? { cert: tls.cert, key: tls.key }, (req, res) => {
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
      unanswered += 1;
      res.once('close', () => (unanswered -= 1));
      const reply = responder(received, requests.length - 1);
      for (const wake of waiters) wake();
      if ('takeOver' in reply) {
        const tcp = tcpSockets.get(peer(req.socket));
        reply.takeOver(res, { reset: () => (tcp ? tcp.resetAndDestroy() : req.socket.destroy()) });
        return;
      }
      if (reply.hang) return;
      res.writeHead(reply.status, reply.headers ?? {});
      res.end(reply.body ?? '');
    });
  });
  server.on('connection', (socket: Socket) => {
    connections += 1;
    const key = peer(socket);
    tcpSockets.set(key, socket);
    socket.once('close', () => tcpSockets.delete(key));
  });
  // A fault that cut the connection leaves the client's error for the server to hear.
  server.on('tlsClientError', () => undefined);
  const port = await listen(server, options);
  const origin = `https://${options.host ?? 'localhost'}:${port}`;
  return {
    origin,
    port,
    url: (path = '/hook') => `${origin}${path}`,
    requests,
    get connections() {
      return connections;
    },
    get unanswered() {
      return unanswered;
    },
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
      for (const socket of tcpSockets.values()) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Listens on the port and address asked for (any free port on 127.0.0.1 by default); an error such as EADDRINUSE rejects. */
async function listen(server: NetServer, options: { bindAddress?: string; port?: number }): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.bindAddress ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** A bare TCP listener on 127.0.0.1, for faults below HTTP: a handshake that never comes, bytes that are not TLS. */
export interface TcpServer {
  readonly port: number;
  url(path?: string): string;
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** Connections still open. */
  readonly open: number;
  close(): Promise<void>;
}

export async function startTcpServer(onSocket: (socket: Socket) => void, options: { bindAddress?: string; port?: number } = {}): Promise<TcpServer> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createTcpServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  const port = await listen(server, options);
  return {
    port,
    url: (path = '/hook') => `https://localhost:${port}${path}`,
    get connections() {
      return connections;
    },
    get open() {
      return sockets.size;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A self-signed certificate for localhost that no CA vouches for: the server must refuse it. */
export function untrustedCertificate(): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'helpdesk-untrusted-'));
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
      { cwd: dir, stdio: 'pipe' },
    );
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
