/**
 * Clients that send slowly or send garbage, over a real socket: a body that stops half-way and
 * headers that drip one byte at a time are cut off after HELPDESK_REQUEST_TIMEOUT_SECONDS with
 * `408 request_timeout`, bytes that are not HTTP get `400 bad_request`, each in the documented
 * error shape and with the connection closed, and none of them writes anything.
 */
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../helpers/dialects.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../../helpers/server.js';

interface RawExchange {
  status: number;
  body: unknown;
  /** From the first byte sent to the server closing the connection. */
  seconds: number;
}

/**
 * Sends `head` at once, then `drip` one character every 200 ms, and collects what the server
 * answers until it closes the connection.
 */
function rawExchange(port: number, head: string, drip = ''): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let dripped = 0;
    const dripper = setInterval(() => {
      if (dripped < drip.length && socket.writable) socket.write(drip[dripped++]!);
    }, 200);
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => undefined); // the server may reset after answering
    socket.on('close', () => {
      clearInterval(dripper);
      const text = Buffer.concat(chunks).toString('utf8');
      const match = /^HTTP\/1\.1 (\d{3}) [^\r]*\r\n[\s\S]*?\r\n\r\n([\s\S]*)$/.exec(text);
      if (!match) return reject(new Error(`no HTTP answer: ${JSON.stringify(text)}`));
      resolve({ status: Number(match[1]), body: JSON.parse(match[2]!), seconds: (performance.now() - started) / 1000 });
    });
    socket.write(head);
  });
}

describeEachDialect('slow clients', (dialect) => {
  let server: TestServer;
  let port: number;

  beforeAll(async () => {
    server = await startTestServer(dialect, { startWorker: false, env: { HELPDESK_REQUEST_TIMEOUT_SECONDS: '1' } });
    await server.runtime.app.listen({ port: 0, host: '127.0.0.1' });
    port = (server.runtime.app.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await server.close();
  });

  async function ticketCount(): Promise<number> {
    const row = await server.runtime.database.db.selectFrom('tickets').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  const headers = (length: number) =>
    `POST /helpdesk/api/v1/tickets HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${ADMIN_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`;

  it('cuts off a body that stops half-way and headers that drip, with 408 request_timeout, and answers garbage with 400', async () => {
    const before = await ticketCount();
    const body = JSON.stringify({ ticket: { subject: 'never finished' } });
    const [stalledBody, drippingHeaders, garbage] = await Promise.all([
      rawExchange(port, `${headers(body.length)}${body.slice(0, 10)}`),
      rawExchange(port, 'POST /helpdesk/api/v1/tickets HTTP/1.1\r\n', 'x-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'),
      rawExchange(port, 'NOT HTTP AT ALL\r\n\r\n'),
    ]);
    for (const timedOut of [stalledBody, drippingHeaders]) {
      expect(timedOut.status).toBe(408);
      expect(timedOut.body).toEqual({ error: { code: 'request_timeout', message: 'The request did not arrive whole in time.' } });
      // Cut off at the timeout (checked once a second), not when the client gave up.
      expect(timedOut.seconds).toBeGreaterThanOrEqual(0.9);
      expect(timedOut.seconds).toBeLessThan(4);
    }
    expect(garbage.status).toBe(400);
    expect(garbage.body).toEqual({ error: { code: 'bad_request', message: 'The request is not valid HTTP.' } });
    expect(await ticketCount()).toBe(before);
  });

  it('still serves a client that sends its request whole', async () => {
    const body = JSON.stringify({ ticket: { subject: 'sent whole' } });
    const before = await ticketCount();
    const response = await fetch(`http://127.0.0.1:${port}/helpdesk/api/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body,
    });
    expect(response.status).toBe(201);
    expect(await ticketCount()).toBe(before + 1);
  });
});
