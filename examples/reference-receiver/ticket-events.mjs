// What a ticket event means for a copy of the ticket, and the copy after it. Pure functions: the
// store decides when to call them, inside its transactions.
//
// The rules are Helpdesk's (docs/api.md, "Events and payloads"; docs/delivery.md, "Order"):
// every ticket event carries `data.ticket.version`, the ticket's version after the change; the
// events of one change share it; `ticket.deleted` carries one more than the ticket's last version.

export const TICKET_EVENT_TYPES = Object.freeze(['ticket.created', 'ticket.updated', 'ticket.assignment.changed', 'ticket.resolved', 'ticket.deleted']);

// These carry the whole ticket as it is after the change (a deletion: as it was), so they set the
// copy whatever came before. `ticket.updated` carries only what changed, so it needs the version
// right before it.
const WHOLE_TICKET_EVENTS = new Set(['ticket.created', 'ticket.assignment.changed', 'ticket.resolved', 'ticket.deleted']);

/** A payload of a ticket event, as far as this receiver relies on it. */
export function isTicketEvent(payload) {
  return (
    payload !== null &&
    typeof payload === 'object' &&
    TICKET_EVENT_TYPES.includes(payload.event) &&
    typeof payload.timestamp === 'string' &&
    typeof payload.data?.ticket?.id === 'string' &&
    Number.isInteger(payload.data.ticket.version)
  );
}

/**
 * Where an event stands against the copy (`known`: `{version, deleted}`, or null for a ticket
 * never seen):
 * - `stale`: at or below the version applied (a retry, a redelivery, a recovery, the second event
 *   of a change already applied), or any event of a deleted ticket (a deletion is final);
 * - `next`: exactly one above: applied;
 * - `jump`: more than one above, but it carries the whole ticket: applied, and the gap with it;
 * - `gap`: more than one above and only a difference: the changes between are needed first.
 */
export function classify(known, payload) {
  if (known?.deleted) return 'stale';
  const applied = known?.version ?? 0;
  const version = payload.data.ticket.version;
  if (version <= applied) return 'stale';
  if (version === applied + 1) return 'next';
  return WHOLE_TICKET_EVENTS.has(payload.event) ? 'jump' : 'gap';
}

/**
 * The copy after an event that `classify` said to apply: `{ticket, version, deleted}`, where
 * `ticket` is null once deleted.
 */
export function applyEvent(ticket, payload) {
  const { version } = payload.data.ticket;
  if (payload.event === 'ticket.deleted') return { ticket: null, version, deleted: true };
  if (payload.event !== 'ticket.updated') return { ticket: structuredClone(payload.data.ticket), version, deleted: false };
  if (ticket === null) throw new Error(`ticket.updated of ${payload.data.ticket.id} at version ${version} has no ticket to apply to`);
  const next = structuredClone(ticket);
  for (const [field, change] of Object.entries(payload.data.ticket.updatedFields)) {
    if (field === 'customFields') {
      // Only the keys that changed; null on the `to` side means the key was removed.
      for (const [key, value] of Object.entries(change.to)) {
        if (value === null) delete next.customFields[key];
        else setOwn(next.customFields, key, value);
      }
    } else {
      // Tags travel as whole arrays, every other field as its new value.
      setOwn(next, field, structuredClone(change.to));
    }
  }
  next.version = version;
  // An update's events carry the change's time, which is the ticket's new `updatedAt`.
  next.updatedAt = payload.timestamp;
  return { ticket: next, version, deleted: false };
}

// A plain assignment to a key named "__proto__" would set the object's prototype instead of a
// field: a custom field may be called anything.
function setOwn(object, key, value) {
  Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
}
