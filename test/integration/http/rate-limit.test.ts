/**
 * Rate limiting per API key over HTTP, on both databases: the RateLimit-* headers on every
 * authenticated response, a 429 `rate_limited` with Retry-After once a key's bucket is empty
 * (and nothing written for it), other keys untouched, and the bucket refilled with time. The
 * clock is the server's own seam, so nothing sleeps.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';

describeEachDialect('rate limit', (dialect) => {
  let server: TestServer;
  const clock = { ms: Date.parse('2026-12-02T10:00:00.000Z'), now: () => clock.ms };

  beforeAll(async () => {
    server = await startTestServer(dialect, {
      startWorker: false,
      env: { HELPDESK_RATE_LIMIT: '1', HELPDESK_RATE_LIMIT_BURST: '3' },
      runtime: { clock },
    });
  });
  afterAll(async () => {
    await server.close();
  });

  async function ticketCount(): Promise<number> {
    const row = await server.runtime.database.db.selectFrom('tickets').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  it('counts down in the headers, then answers 429 with Retry-After and writes nothing', async () => {
    clock.ms += 3_600_000; // a full bucket for the admin token
    const remaining: unknown[] = [];
    for (let i = 0; i < 3; i += 1) {
      const response = await server.request('GET', '/tickets');
      expect(response.status).toBe(200);
      expect(response.headers['ratelimit-limit']).toBe('3');
      remaining.push(response.headers['ratelimit-remaining']);
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const before = await ticketCount();
    const refused = await server.request('POST', '/tickets', { body: { ticket: { subject: 'one too many' } } });
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ code: 'rate_limited' });
    expect(refused.body.error.requestId).toBe(refused.headers['x-request-id']);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers['ratelimit-remaining']).toBe('0');
    expect(await ticketCount()).toBe(before);
  });

  it('limits each key on its own and lets a key back in once its bucket refills', async () => {
    clock.ms += 3_600_000;
    const agent = await server.keyFor('agent'); // two admin requests, and a third:
    expect((await server.request('GET', '/tickets')).status).toBe(200);
    expect((await server.request('GET', '/tickets')).status).toBe(429);
    const agentResponse = await server.request('GET', '/tickets', { key: agent.key });
    expect(agentResponse.status).toBe(200);
    expect(agentResponse.headers['ratelimit-remaining']).toBe('2');
    clock.ms += 1_000;
    const back = await server.request('GET', '/tickets');
    expect(back.status).toBe(200);
    expect(back.headers['ratelimit-remaining']).toBe('0');
  });

  it('does not limit requests without a valid key (they are refused first) nor the open endpoints', async () => {
    clock.ms += 3_600_000;
    for (let i = 0; i < 5; i += 1) expect((await server.request('GET', '/tickets', { key: null })).status).toBe(401);
    for (let i = 0; i < 5; i += 1) expect((await server.request('GET', '/healthz', { key: null })).status).toBe(200);
    const response = await server.request('GET', '/tickets');
    expect(response.status).toBe(200);
    expect(response.headers['ratelimit-remaining']).toBe('2');
  });
});
