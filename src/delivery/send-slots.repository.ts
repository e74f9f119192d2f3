/**
 * The send slots of rate-limited webhooks (docs/delivery.md, "Rate limits"): one row per webhook
 * holding the earliest time of its next send, shared by every worker process, so that a limit
 * holds across all of them. A reservation moves it forward by one interval per slot taken.
 */
import { sql } from 'kysely';
import type { Capabilities } from '../db/capabilities.js';
import { inList } from '../db/bound-rows.js';
import type { Db } from '../db/connection.js';
import { inTransaction } from '../db/transaction.js';

export interface SlotRequest {
  webhookId: string;
  /** How many sends are wanted. */
  count: number;
  /** Milliseconds between two sends of this webhook. */
  intervalMs: number;
}

export interface SlotGrant {
  /** The times of the sends granted, in order: as many as were wanted, or fewer. */
  slots: number[];
  /** The earliest time of the webhook's next send after these. */
  nextSlotAt: number;
}

/**
 * Reserves send slots for each webhook, from its next free slot (or now) to at most `horizonMs`
 * ahead, in one transaction; returns the grants and the time they were made at. The rows are locked in webhook id order, so two workers reserving
 * for the same webhooks never wait on each other crosswise.
 */
export async function reserveSendSlots(db: Db, capabilities: Capabilities, requests: readonly SlotRequest[], clock: () => number, horizonMs: number): Promise<{ grants: Map<string, SlotGrant>; now: number }> {
  const grants = new Map<string, SlotGrant>();
  if (requests.length === 0) return { grants, now: clock() };
  const ordered = [...requests].sort((a, b) => (a.webhookId < b.webhookId ? -1 : a.webhookId > b.webhookId ? 1 : 0));
  const ids = ordered.map((request) => request.webhookId);
  return inTransaction(db, async (trx) => {
    // A webhook's row is made on its first reservation; one deleted meanwhile gets none.
    await trx
      .insertInto('webhook_send_slots')
      .columns(['webhook_id', 'next_slot_at'])
      .expression((eb) => eb.selectFrom('webhooks').select(['id', sql<number>`0`.as('next_slot_at')]).where(inList(capabilities, 'id', ids)))
      .onConflict((oc) => oc.column('webhook_id').doNothing())
      .execute();
    let query = trx.selectFrom('webhook_send_slots').select(['webhook_id', 'next_slot_at']).where(inList(capabilities, 'webhook_id', ids)).orderBy('webhook_id');
    if (capabilities.rowLocks) query = query.forUpdate();
    const nextSlotOf = new Map((await query.execute()).map((row) => [row.webhook_id, Number(row.next_slot_at)]));
    // Read once the rows are locked: a slot granted for "now" must not be already past when the
    // grant returns, or the send after it, on time, would come less than an interval later.
    const now = clock();
    for (const { webhookId, count, intervalMs } of ordered) {
      const next = nextSlotOf.get(webhookId);
      if (next === undefined) continue;
      const slots: number[] = [];
      for (let at = Math.max(next, now); slots.length < count && at <= now + horizonMs; at += intervalMs) slots.push(at);
      const nextSlotAt = slots.length > 0 ? slots.at(-1)! + intervalMs : Math.max(next, now);
      if (slots.length > 0) await trx.updateTable('webhook_send_slots').set({ next_slot_at: nextSlotAt }).where('webhook_id', '=', webhookId).execute();
      grants.set(webhookId, { slots, nextSlotAt });
    }
    return { grants, now };
  });
}
