/**
 * Whether a delivery worker does its job, for `GET /healthz` (docs/deployment.md, "Health and
 * metrics"). It is unhealthy when its database does not answer a trivial query within a few
 * seconds, or when it has taken no delivery for longer than its lease while a delivery has been
 * due, unclaimed, for that long: work waits and this worker is not taking it (its claims fail or
 * find the rows locked). A lease is what another worker waits before it takes over a dead
 * worker's deliveries, so the same span is allowed to a live one.
 */
import type { Db } from '../db/connection.js';
import { pingDatabase, withinTime } from '../db/ping.js';
import { type Clock, toIso } from '../shared/time.js';
import { oldestClaimableDueAt } from './deliveries.repository.js';

export const HEALTH_PROBLEMS = ['database_unreachable', 'not_claiming'] as const;
export type HealthProblem = (typeof HEALTH_PROBLEMS)[number];

export type HealthReport = { readonly status: 'ok' } | { readonly status: 'unavailable'; readonly reason: HealthProblem; readonly message: string };

/** What the check reads of the worker. */
export interface ClaimingWorker {
  readonly running: boolean;
  readonly lastClaimAt: number;
  readonly leaseMs: number;
}

/** A check answers within this, whatever the database does. */
export const HEALTH_CHECK_TIMEOUT_MS = 2_000;

export class WorkerHealth {
  constructor(
    private readonly db: Db,
    private readonly worker: ClaimingWorker,
    private readonly clock: Clock,
    private readonly timeoutMs = HEALTH_CHECK_TIMEOUT_MS,
  ) {}

  async check(): Promise<HealthReport> {
    try {
      await pingDatabase(this.db, this.timeoutMs);
    } catch (error) {
      return { status: 'unavailable', reason: 'database_unreachable', message: `The worker cannot reach its database: ${(error as Error).message}.` };
    }
    const { running, lastClaimAt, leaseMs } = this.worker;
    const now = this.clock.now();
    // Stopping (its leases are being given back), or within a lease of its last claim: no need to look.
    if (!running || now - lastClaimAt <= leaseMs) return { status: 'ok' };
    let waitingSince: string | null;
    try {
      waitingSince = await withinTime(oldestClaimableDueAt(this.db, toIso(now - leaseMs), toIso(now)), this.timeoutMs, 'the database did not answer');
    } catch (error) {
      return { status: 'unavailable', reason: 'database_unreachable', message: `The worker cannot reach its database: ${(error as Error).message}.` };
    }
    if (waitingSince === null) return { status: 'ok' };
    return {
      status: 'unavailable',
      reason: 'not_claiming',
      message: `The worker has claimed no delivery since ${toIso(lastClaimAt)}, longer than its lease (${leaseMs / 1000} s), while a delivery has been due since ${waitingSince}.`,
    };
  }
}
