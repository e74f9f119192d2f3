/**
 * What a webhook's filter is matched against (docs/api.md, "Filters"): `{event, ticket,
 * changes}`, the whole ticket after the change and the change itself, whatever the event's
 * payload carries. The outbox builds it from the change; a past event's is rebuilt from its
 * payload and the context stored beside it.
 */

/** The part of a filter document that comes from the change. */
export interface FilterSubject {
  /** The whole ticket after the change; for `ticket.deleted`, as it was. */
  ticket: unknown;
  /** The change's `updatedFields`; `{}` for a creation or a deletion. */
  changes: Record<string, unknown>;
}

export interface FilterDocument extends FilterSubject {
  event: string;
}

/** The document of an event of `type` made by a change; `{}` changes and a null ticket without one. */
export function filterDocument(type: string, subject: FilterSubject | null): FilterDocument {
  return { event: type, ticket: subject?.ticket ?? null, changes: subject?.changes ?? {} };
}

/**
 * What must be stored beside an event for its filter document to be rebuilt: nothing when the
 * payload carries the whole ticket and there are no changes (a creation, a deletion), else the
 * subject as JSON.
 */
export function storedFilterContext(subject: FilterSubject | null): string | null {
  if (subject === null || Object.keys(subject.changes).length === 0) return null;
  return JSON.stringify(subject);
}

/** A recorded event's filter document, from its payload and its stored context. */
export function recordedFilterDocument(type: string, payload: string, filterContext: string | null): FilterDocument {
  if (filterContext !== null) return filterDocument(type, JSON.parse(filterContext) as FilterSubject);
  const data = (JSON.parse(payload) as { data?: { ticket?: unknown } }).data;
  return filterDocument(type, { ticket: data?.ticket ?? null, changes: {} });
}
