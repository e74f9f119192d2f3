import { describe, expect, it } from 'vitest';
import { CircuitBreakers, DEFAULT_BREAKER_POLICY } from '../../../src/delivery/circuit-breaker.js';

const HOST = 'hooks.example.com:443';
const OTHER = 'other.example.com:443';
const PAUSE = DEFAULT_BREAKER_POLICY.pauseMs;

/** A breaker set on a hand-moved clock. */
function breakers() {
  const clock = { now: 1_700_000_000_000 };
  const set = new CircuitBreakers(() => clock.now);
  const record = (outcomes: string, target = HOST) => {
    // 'F' a failed attempt, 'S' a successful one, all at the current time.
    for (const outcome of outcomes) set.record(target, outcome === 'F');
  };
  return { clock, set, record };
}

/** Trips the breaker with ten failures. */
function opened() {
  const b = breakers();
  b.record('FFFFFFFFFF');
  expect(b.set.state(HOST)).toBe('open');
  return b;
}

describe('circuit breaker', () => {
  it('holds a bounded amount of state however many attempts it counts', () => {
    const { clock, set, record } = breakers();
    // Ten minutes of a success every 10 ms: 60,000 outcomes, two windows' worth.
    for (let i = 0; i < 60_000; i += 1) {
      record('S');
      clock.now += 10;
    }
    expect(set.state(HOST)).toBe('closed');
    record('FFFFFFFFFF'); // 10 failures beside 30,000 successes in the window: far from 70%
    expect(set.state(HOST)).toBe('closed');
    expect(set.windowSize(HOST)).toBeLessThanOrEqual(61);
  });

  it('uses the documented policy: 70% of at least 10 attempts in 5 minutes, paused 30 s', () => {
    expect(DEFAULT_BREAKER_POLICY).toEqual({ windowMs: 300_000, minimumAttempts: 10, failureRatio: 0.7, pauseMs: 30_000 });
  });

  it('starts closed and lets attempts through', () => {
    const { set } = breakers();
    expect(set.state(HOST)).toBe('closed');
    expect(set.tryAcquire(HOST)).toBe(true);
    expect(set.tryAcquire(HOST)).toBe(true);
    expect(set.pausedUntil(HOST)).toBeNull();
  });

  it('stays closed under 10 attempts, even if all of them failed', () => {
    const { set, record } = breakers();
    record('FFFFFFFFF');
    expect(set.state(HOST)).toBe('closed');
    expect(set.tryAcquire(HOST)).toBe(true);
    expect(set.pausedUntil(HOST)).toBeNull();
  });

  it('stays closed under 70% failures, however many attempts', () => {
    const { set, record } = breakers();
    record('SSSSFFFFFF'); // 6 of 10
    expect(set.state(HOST)).toBe('closed');
    record('SSSSSFFFFFFFF'); // 14 of 23, 61%
    expect(set.state(HOST)).toBe('closed');
    expect(set.tryAcquire(HOST)).toBe(true);
  });

  it('opens at 70% failures of 10 attempts and refuses attempts for 30 s', () => {
    const { clock, set, record } = breakers();
    record('SSSFFFFFF'); // 9 attempts: too few to judge
    expect(set.state(HOST)).toBe('closed');
    record('F'); // 7 of 10
    expect(set.state(HOST)).toBe('open');
    expect(set.tryAcquire(HOST)).toBe(false);
    expect(set.pausedUntil(HOST)).toBe(clock.now + PAUSE);
  });

  it('opens on the first attempt that brings the ratio to 70% once there are enough', () => {
    const { set, record } = breakers();
    record('SSSSSSFFFFFFFF'); // 8 of 14 (57%): closed
    expect(set.state(HOST)).toBe('closed');
    record('FFFFF'); // 13 of 19 (68%): still closed
    expect(set.state(HOST)).toBe('closed');
    record('F'); // 14 of 20: 70%
    expect(set.state(HOST)).toBe('open');
  });

  it('forgets outcomes older than the 5-minute window (counted in 5 s buckets)', () => {
    const { clock, set, record } = breakers();
    record('FFFFFFFFF');
    // The window moves a bucket at a time: past it by one whole bucket, the old ones are gone.
    clock.now += DEFAULT_BREAKER_POLICY.windowMs + 5_000;
    record('F'); // the nine old failures are gone: 1 attempt in the window
    expect(set.state(HOST)).toBe('closed');
    record('FFFFFFFF'); // 9 in the window
    expect(set.state(HOST)).toBe('closed');
    record('F'); // 10
    expect(set.state(HOST)).toBe('open');
  });

  it('counts outcomes spread over the window together', () => {
    const { clock, set, record } = breakers();
    record('FFFF');
    clock.now += 2 * 60_000;
    record('FFS');
    clock.now += 2 * 60_000;
    expect(set.state(HOST)).toBe('closed');
    record('SFF'); // 8 of 10 within 4 minutes
    expect(set.state(HOST)).toBe('open');
  });

  it('keeps one target\'s breaker from affecting another', () => {
    const { set, record } = opened();
    expect(set.state(OTHER)).toBe('closed');
    expect(set.tryAcquire(OTHER)).toBe(true);
    record('FFFFF', OTHER);
    expect(set.state(OTHER)).toBe('closed');
    expect(set.states()).toEqual(new Map([[HOST, 'open'], [OTHER, 'closed']]));
  });

  it('stays open for the whole pause, then half-opens and lets exactly one probe through', () => {
    const { clock, set } = opened();
    clock.now += PAUSE - 1;
    expect(set.state(HOST)).toBe('open');
    expect(set.tryAcquire(HOST)).toBe(false);
    clock.now += 1;
    expect(set.state(HOST)).toBe('half_open');
    expect(set.tryAcquire(HOST)).toBe(true); // the probe
    expect(set.tryAcquire(HOST)).toBe(false);
    expect(set.tryAcquire(HOST)).toBe(false);
    // While the probe runs the target counts as paused, so the worker does not claim for it.
    expect(set.pausedUntil(HOST)).not.toBeNull();
    expect(set.pausedUntil(HOST)!).toBeGreaterThan(clock.now);
  });

  it('closes when the probe succeeds, with a fresh window', () => {
    const { clock, set, record } = opened();
    clock.now += PAUSE;
    expect(set.tryAcquire(HOST)).toBe(true);
    record('S');
    expect(set.state(HOST)).toBe('closed');
    expect(set.pausedUntil(HOST)).toBeNull();
    expect(set.tryAcquire(HOST)).toBe(true);
    expect(set.tryAcquire(HOST)).toBe(true);
    // The failures that opened it do not count any more: nine new ones are not enough.
    record('FFFFFFFFF');
    expect(set.state(HOST)).toBe('closed');
    record('F');
    expect(set.state(HOST)).toBe('open');
  });

  it('reopens for another pause when the probe fails, then probes again', () => {
    const { clock, set, record } = opened();
    clock.now += PAUSE + 5_000;
    expect(set.tryAcquire(HOST)).toBe(true);
    record('F');
    expect(set.state(HOST)).toBe('open');
    expect(set.pausedUntil(HOST)).toBe(clock.now + PAUSE);
    expect(set.tryAcquire(HOST)).toBe(false);
    clock.now += PAUSE - 1;
    expect(set.tryAcquire(HOST)).toBe(false);
    clock.now += 1;
    expect(set.state(HOST)).toBe('half_open');
    expect(set.tryAcquire(HOST)).toBe(true);
    expect(set.tryAcquire(HOST)).toBe(false);
    record('S');
    expect(set.state(HOST)).toBe('closed');
  });

  it('applies a custom policy', () => {
    let now = 0;
    const set = new CircuitBreakers(() => now, { windowMs: 1_000, minimumAttempts: 3, failureRatio: 0.5, pauseMs: 100 });
    set.record(HOST, true);
    set.record(HOST, false);
    expect(set.state(HOST)).toBe('closed');
    set.record(HOST, false);
    expect(set.state(HOST)).toBe('closed'); // 1 of 3
    set.record(HOST, true); // 2 of 4: 50%
    expect(set.state(HOST)).toBe('open');
    expect(set.pausedUntil(HOST)).toBe(100);
    now = 100;
    expect(set.tryAcquire(HOST)).toBe(true);
  });
});
