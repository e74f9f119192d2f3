/**
 * The lanes of one worker (docs/delivery.md, "Concurrency and isolation"): the webhooks of one
 * host take turns and share its slots fairly; a paused webhook's claims go back but an admin's
 * act goes out; a webhook stopped by a 410 starts nothing until its deactivation is known.
 */
import { describe, expect, it } from 'vitest';
import { CircuitBreakers } from '../../../src/delivery/circuit-breaker.js';
import type { ClaimedDelivery } from '../../../src/delivery/deliveries.repository.js';
import { HostLanes, maxAttemptsPerHost, type Claim } from '../../../src/delivery/host-lanes.js';

const HOST = 'hooks.example.com';

function lanes(perHost: number, options: { global?: number; now?: () => number } = {}) {
  const now = options.now ?? (() => 0);
  const breakers = new CircuitBreakers(now, { windowMs: 60_000, minimumAttempts: 2, failureRatio: 0.5, pauseMs: 10_000 });
  return { breakers, lanes: new HostLanes({ perHost, global: options.global ?? 1_000, maxWaitMs: 1_000 }, breakers, { now }) };
}

let counter = 0;
function claim(webhookId: string, options: { expedited?: boolean; claimedAt?: number } = {}): Claim {
  counter += 1;
  const delivery: ClaimedDelivery = {
    id: `msg_${counter}`,
    seq: counter,
    webhookId,
    eventType: 'ticket.created',
    status: 'pending',
    expedited: options.expedited ?? false,
    scheduleAttempts: 0,
    nextAttemptAt: '2026-01-01T00:00:00.000Z',
    traceparent: null,
    createdAt: '2026-01-01T00:00:00.000Z',
    payload: '{}',
  };
  return { delivery, target: { targetUrl: `https://${HOST}/${webhookId}`, signingSecrets: [], active: true, headers: {}, rateLimit: null }, host: HOST, claimedAt: options.claimedAt ?? 0 };
}

const webhooksOf = (claims: Claim[]) => claims.map((c) => c.delivery.webhookId);

describe('host lanes', () => {
  it('gives a webhook alone on its host all of the host\'s slots', () => {
    const { lanes: l } = lanes(4);
    for (let i = 0; i < 10; i += 1) l.enqueue(claim('a'));
    expect(webhooksOf(l.take(HOST).start)).toEqual(['a', 'a', 'a', 'a']);
  });

  it('shares a host\'s slots fairly between its webhooks, taking turns', () => {
    const { lanes: l } = lanes(4);
    for (let i = 0; i < 10; i += 1) l.enqueue(claim('a'));
    for (let i = 0; i < 10; i += 1) l.enqueue(claim('b'));
    const first = webhooksOf(l.take(HOST).start);
    expect(first.slice(0, 2).sort()).toEqual(['a', 'b']);
    expect(first.sort()).toEqual(['a', 'a', 'b', 'b']);
    // A freed slot goes to the webhook that answered, within its share.
    l.answered(HOST, 'b');
    expect(webhooksOf(l.take(HOST).start)).toEqual(['b']);
  });

  it('starts a newcomer\'s share at once beside a webhook that holds every slot, never past twice the host\'s limit', () => {
    const { lanes: l } = lanes(4);
    for (let i = 0; i < 10; i += 1) l.enqueue(claim('hanging'));
    expect(l.take(HOST).start).toHaveLength(4);
    for (let i = 0; i < 10; i += 1) l.enqueue(claim('healthy'));
    expect(webhooksOf(l.take(HOST).start)).toEqual(['healthy', 'healthy']);
    for (let i = 0; i < 10; i += 1) l.enqueue(claim('third'));
    expect(webhooksOf(l.take(HOST).start)).toEqual(['third']);
    expect(4 + 2 + 1).toBeLessThanOrEqual(maxAttemptsPerHost(4));
    // The one over its share starts nothing until it is back under it.
    l.answered(HOST, 'hanging');
    expect(l.take(HOST).start).toEqual([]);
  });

  it('takes no more claims for a webhook whose lane holds two rounds of its share', () => {
    const { lanes: l } = lanes(4);
    for (let i = 0; i < 7; i += 1) l.enqueue(claim('a'));
    l.take(HOST);
    expect(l.isSaturated('a', HOST)).toBe(false);
    l.enqueue(claim('a'));
    expect(l.isSaturated('a', HOST)).toBe(true);
    expect(l.isSaturated('b', HOST)).toBe(false);
  });

  it('gives back a paused webhook\'s scheduled claims but sends its admin\'s acts, and pauses no other webhook', () => {
    const { lanes: l, breakers } = lanes(4);
    breakers.record('failing', true);
    breakers.record('failing', true);
    expect(breakers.state('failing')).toBe('open');
    const scheduled = claim('failing');
    const adminAct = claim('failing', { expedited: true });
    l.enqueue(scheduled);
    l.enqueue(adminAct);
    l.enqueue(claim('healthy'));
    const { start, giveBack } = l.take(HOST);
    expect(start.map((c) => c.delivery.id).sort()).toEqual([adminAct.delivery.id, start.find((c) => c.delivery.webhookId === 'healthy')!.delivery.id].sort());
    expect(giveBack).toEqual([scheduled.delivery.id]);
    expect(l.isSaturated('failing', HOST)).toBe(true);
    expect(l.isSaturated('healthy', HOST)).toBe(false);
  });

  it('starts nothing for a stopped webhook, then hands back its waiting claims once it was deactivated', () => {
    const { lanes: l } = lanes(1);
    const first = claim('gone');
    const second = claim('gone');
    l.enqueue(first);
    l.enqueue(second);
    expect(l.take(HOST).start).toEqual([first]);
    l.stop('gone');
    l.answered(HOST, 'gone');
    expect(l.take(HOST).start).toEqual([]);
    expect(l.isSaturated('gone', HOST)).toBe(true);
    expect(l.resume('gone', true)).toEqual([second.delivery.id]);
    expect(l.take(HOST).start).toEqual([]);
    expect(l.isSaturated('gone', HOST)).toBe(false);
  });

  it('lets a stopped webhook go on when it was not deactivated', () => {
    const { lanes: l } = lanes(1);
    const waiting = claim('a');
    l.stop('a');
    l.enqueue(waiting);
    expect(l.take(HOST).start).toEqual([]);
    expect(l.resume('a', false)).toEqual([]);
    expect(l.take(HOST).start).toEqual([waiting]);
  });

  it('gives back a claim that waited longer than the limit, to be read afresh', () => {
    let now = 0;
    const { lanes: l } = lanes(1, { now: () => now });
    l.enqueue(claim('a'));
    const stale = claim('a');
    l.enqueue(stale);
    l.take(HOST);
    now = 1_500;
    l.answered(HOST, 'a');
    expect(l.take(HOST)).toEqual({ start: [], giveBack: [stale.delivery.id] });
  });
});
