/**
 * Webhook filters (docs/api.md, "Filters") through the HTTP API, with real HTTPS deliveries:
 * the five examples an admin writes, each matched and not matched on every event type
 * (ticket.updated events whose payload lacks the filtered field included, as the filter sees the
 * whole ticket after the change); every refused operator and the size and depth limits, with
 * nothing created or changed; and POST /webhooks/filter-preview on the last events.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDialect } from '../../helpers/dialects.js';
import { startReceiver, type ReceivedRequest, type Receiver } from '../../helpers/receiver.js';
import { startTestServer, type ApiResponse, type TestServer } from '../../helpers/server.js';
import { waitFor } from '../../helpers/wait.js';

const ALL_EVENTS = ['ticket.created', 'ticket.updated', 'ticket.deleted', 'ticket.assignment.changed', 'ticket.resolved'] as const;
type EventType = (typeof ALL_EVENTS)[number];

/** The examples of docs/api.md, by a name the expectations below use. */
const EXAMPLES = ['urgentOrHigh', 'vip', 'resolved', 'assignedToAgent', 'regionEu'] as const;
type Example = (typeof EXAMPLES)[number];

function exampleFilters(agentId: string): Record<Example, Record<string, unknown>> {
  return {
    urgentOrHigh: { 'ticket.priority': { $in: ['urgent', 'high'] } },
    vip: { 'ticket.tags': 'vip' },
    resolved: { 'changes.status.to': 'resolved' },
    assignedToAgent: { 'ticket.assigneeId': agentId },
    regionEu: { 'ticket.customFields.region': 'EU' },
  };
}

/** An event as both the receiver and the delivery list can name it. */
const eventKey = (type: string, ticketId: string, version: number) => `${type} ${ticketId} v${version}`;

function keyOfRequest(request: ReceivedRequest): string {
  const body = JSON.parse(request.body) as { event: string; data: { ticket: { id: string; version: number } } };
  return eventKey(body.event, body.data.ticket.id, body.data.ticket.version);
}

const sorted = (keys: string[]) => [...keys].sort();

function expectValidationFailed(response: ApiResponse, path: string): void {
  expect(response.status, JSON.stringify(response.body)).toBe(400);
  expect(response.body.error.code).toBe('validation_failed');
  const paths = (response.body.error.details as { path: string }[]).map((d) => d.path);
  expect(paths, JSON.stringify(response.body.error.details)).toContain(path);
}

/** Each refused filter and the path its 400 must name (under `webhook.filter`). */
const REFUSED: [string, Record<string, unknown>, string][] = [
  ['$where (code)', { $where: 'this.ticket.priority === "urgent"' }, '.$where'],
  ['$where inside $and', { $and: [{ 'ticket.priority': 'low' }, { $where: 'sleep(1000)' }] }, '.$and[1].$where'],
  ['$where on a field', { 'ticket.priority': { $where: 'x', $eq: 'low' } }, '["ticket.priority"].$where'],
  ['$expr', { $expr: { $eq: ['$ticket.priority', 'urgent'] } }, '.$expr'],
  ['$regex', { 'ticket.subject': { $regex: '^(a+)+$' } }, '["ticket.subject"].$regex'],
  ['$regex inside $or', { $or: [{ 'ticket.priority': 'low' }, { 'ticket.priority': { $regex: '^u' } }] }, '.$or[1]["ticket.priority"].$regex'],
  ['$regex inside $not', { 'ticket.subject': { $not: { $regex: 'x' } } }, '["ticket.subject"].$not.$regex'],
  ['$regex hidden in an $in value', { 'ticket.priority': { $in: [{ $regex: 'u' }] } }, '["ticket.priority"].$in[0].$regex'],
  ['$function', { $function: { body: 'function() { return true }', args: [], lang: 'js' } }, '.$function'],
  ['$function on a field', { 'ticket.subject': { $function: { body: 'x' } } }, '["ticket.subject"].$function'],
  ['$text', { $text: { $search: 'printer' } }, '.$text'],
  ['$jsonSchema', { $jsonSchema: { required: ['ticket'] } }, '.$jsonSchema'],
  ['$elemMatch', { 'ticket.tags': { $elemMatch: { $eq: 'vip' } } }, '["ticket.tags"].$elemMatch'],
  ['$mod', { 'ticket.version': { $mod: [2, 0] } }, '["ticket.version"].$mod'],
  ['$type', { 'ticket.assigneeId': { $type: 'string' } }, '["ticket.assigneeId"].$type'],
  ['an unknown $foo on a field', { 'ticket.priority': { $foo: 1 } }, '["ticket.priority"].$foo'],
  ['an unknown $foo at the top', { $foo: 1 }, '.$foo'],
  ['$not at the top level', { $not: { 'ticket.priority': 'low' } }, '.$not'],
  ['an operator mixed with a field', { 'ticket.priority': { $eq: 'high', level: 1 } }, '["ticket.priority"].level'],
  ['a field operator at the top', { $eq: 'urgent' }, '.$eq'],
  ['a field path holding $', { 'ticket.$where': 1 }, '["ticket.$where"]'],
];

/** A filter whose JSON is exactly `bytes` long: one $in list padded to size. */
function filterOfBytes(bytes: number): Record<string, unknown> {
  const base = JSON.stringify({ 'ticket.subject': { $in: [''] } }).length;
  return { 'ticket.subject': { $in: ['x'.repeat(bytes - base)] } };
}

/** `{"$and": [{"$and": [...{"ticket.priority": "low"}]}]}`: each $and adds an array and an object. */
function nestedAnd(ands: number): Record<string, unknown> {
  let filter: Record<string, unknown> = { 'ticket.priority': 'low' };
  for (let i = 0; i < ands; i += 1) filter = { $and: [filter] };
  return filter;
}

/** `{"ticket.customFields": {"k1": {"k2": ... 1}}}` with `objects` objects under the field. */
function nestedValue(objects: number): Record<string, unknown> {
  let value: unknown = 1;
  for (let i = objects; i >= 1; i -= 1) value = { [`k${i}`]: value };
  return { 'ticket.customFields': value };
}

describeEachDialect('webhook filters', (dialect) => {
  let server: TestServer;
  let receiver: Receiver;

  beforeAll(async () => {
    server = await startTestServer(dialect);
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await server?.close();
    await receiver?.close();
  });

  async function subscribe(path: string, filter: Record<string, unknown> | null | undefined, events: readonly string[] = ALL_EVENTS): Promise<{ id: string }> {
    const response = await server.request('POST', '/webhooks', { body: { webhook: { name: path, targetUrl: receiver.url(path), events, ...(filter === undefined ? {} : { filter }) } } });
    expect(response.status, JSON.stringify(response.body)).toBe(201);
    return response.body.webhook;
  }

  async function deliveriesOf(webhookId: string): Promise<{ id: string; event: string; status: string; ticketId: string | null; ticketVersion: number | null }[]> {
    const all = [];
    let cursor: string | null = null;
    do {
      const response: ApiResponse = await server.request('GET', `/webhooks/${webhookId}/deliveries?limit=100&include=ticketId,ticketVersion${cursor ? `&cursor=${cursor}` : ''}`);
      expect(response.status).toBe(200);
      all.push(...response.body.deliveries);
      cursor = response.body.nextCursor;
    } while (cursor !== null);
    return all;
  }

  const requestsTo = (path: string) => receiver.requests.filter((r) => r.path === path);

  async function webhookCount(): Promise<number> {
    let count = 0;
    let cursor: string | null = null;
    do {
      const response: ApiResponse = await server.request('GET', `/webhooks?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
      count += response.body.webhooks.length;
      cursor = response.body.nextCursor;
    } while (cursor !== null);
    return count;
  }

  async function filteredOutTotal(): Promise<number> {
    const metrics = await server.runtime.app.inject({ method: 'GET', url: '/metrics' });
    return Number(/^helpdesk_deliveries_filtered_out_total (\d+)$/m.exec(metrics.body)?.[1]);
  }

  it('delivers to each example exactly the events it matches, of every type, and an unfiltered webhook all of them', async () => {
    const agent = await server.keyFor('agent');
    const otherAgent = await server.keyFor('agent');
    const filters = exampleFilters(agent.userId);
    const all = await subscribe('/examples/all', null);
    const webhooks = Object.fromEntries(await Promise.all(EXAMPLES.map(async (name) => [name, await subscribe(`/examples/${name}`, filters[name])]))) as Record<Example, { id: string }>;
    const filteredOutBefore = await filteredOutTotal();

    // Every event the steps below make, with the examples it must match.
    const expected: { key: string; type: EventType; matched: readonly Example[] }[] = [];
    const versions = new Map<string, number>();
    const record = (type: EventType, ticketId: string, version: number, matched: readonly Example[]) => expected.push({ key: eventKey(type, ticketId, version), type, matched });

    async function create(ticket: Record<string, unknown>, matched: readonly Example[]): Promise<string> {
      const response = await server.request('POST', '/tickets', { body: { ticket } });
      expect(response.status, JSON.stringify(response.body)).toBe(201);
      const { id, version } = response.body.ticket;
      versions.set(id, version);
      record('ticket.created', id, version, matched);
      return id;
    }
    async function update(id: string, patch: Record<string, unknown>, events: Partial<Record<EventType, readonly Example[]>>): Promise<void> {
      const response = await server.request('PUT', `/tickets/${id}`, { body: { ticket: patch } });
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      versions.set(id, response.body.ticket.version);
      for (const [type, matched] of Object.entries(events)) record(type as EventType, id, response.body.ticket.version, matched);
    }
    async function remove(id: string, matched: readonly Example[]): Promise<void> {
      expect((await server.request('DELETE', `/tickets/${id}`)).status).toBe(204);
      record('ticket.deleted', id, versions.get(id)! + 1, matched);
    }
    const allBut = (...left: Example[]) => EXAMPLES.filter((name) => !left.includes(name));

    // An urgent VIP ticket from the EU assigned to the agent: every example but "resolved" matches
    // it, whatever field an update touches.
    const t1 = await create({ subject: 'Invoice wrong', priority: 'urgent', tags: ['vip', 'billing'], customFields: { region: 'EU' }, assigneeId: agent.userId }, allBut('resolved'));
    // Payloads without priority, tags, assignee or region: the filter reads the ticket after the change.
    await update(t1, { subject: 'Invoice wrong (again)' }, { 'ticket.updated': allBut('resolved') });
    await update(t1, { customFields: { tier: 'gold' } }, { 'ticket.updated': allBut('resolved') });
    await update(t1, { status: 'resolved' }, { 'ticket.updated': EXAMPLES, 'ticket.resolved': EXAMPLES });
    await update(t1, { status: 'open' }, { 'ticket.updated': allBut('resolved') });
    await update(t1, { assigneeId: otherAgent.userId }, { 'ticket.updated': allBut('resolved', 'assignedToAgent'), 'ticket.assignment.changed': allBut('resolved', 'assignedToAgent') });
    await update(t1, { assigneeId: agent.userId }, { 'ticket.updated': allBut('resolved'), 'ticket.assignment.changed': allBut('resolved') });
    await remove(t1, allBut('resolved'));

    // A normal ticket, not VIP, from the US, unassigned: only a change to resolved matches.
    const t2 = await create({ subject: 'Password reset', priority: 'normal', tags: ['billing'], customFields: { region: 'US' } }, []);
    await update(t2, { subject: 'Password reset please' }, { 'ticket.updated': [] });
    await update(t2, { status: 'resolved', assigneeId: otherAgent.userId }, { 'ticket.updated': ['resolved'], 'ticket.assignment.changed': ['resolved'], 'ticket.resolved': ['resolved'] });
    await remove(t2, []);

    // A high-priority ticket that leaves one filter and enters the others.
    const t3 = await create({ subject: 'VPN down', priority: 'high' }, ['urgentOrHigh']);
    await update(t3, { priority: 'low' }, { 'ticket.updated': [] });
    await update(t3, { tags: ['vip'], customFields: { region: 'EU' }, assigneeId: agent.userId }, { 'ticket.updated': ['vip', 'regionEu', 'assignedToAgent'], 'ticket.assignment.changed': ['vip', 'regionEu', 'assignedToAgent'] });
    await update(t3, { status: 'resolved' }, { 'ticket.updated': ['vip', 'regionEu', 'assignedToAgent', 'resolved'], 'ticket.resolved': ['vip', 'regionEu', 'assignedToAgent', 'resolved'] });
    await update(t3, { tags: ['network'], customFields: { region: null }, assigneeId: null }, { 'ticket.updated': [], 'ticket.assignment.changed': [] });
    await remove(t3, []);

    // Created already resolved: a creation has no changes, so "status changed to resolved" does not match it.
    await create({ subject: 'Solved on the phone', priority: 'urgent', status: 'resolved' }, ['urgentOrHigh']);

    // Every example has a match and a non-match on every event type where the contract allows one.
    for (const type of ALL_EVENTS) {
      const ofType = expected.filter((e) => e.type === type);
      for (const name of EXAMPLES) {
        const impossibleMatch = name === 'resolved' && (type === 'ticket.created' || type === 'ticket.deleted');
        const impossibleMiss = name === 'resolved' && type === 'ticket.resolved';
        if (!impossibleMatch) expect(ofType.some((e) => e.matched.includes(name)), `${name} matches a ${type}`).toBe(true);
        if (!impossibleMiss) expect(ofType.some((e) => !e.matched.includes(name)), `${name} misses a ${type}`).toBe(true);
      }
    }

    // The deliveries are made in the change's transaction: the lists are final already.
    const everyKey = expected.map((e) => e.key);
    expect(sorted((await deliveriesOf(all.id)).map((d) => eventKey(d.event, d.ticketId!, d.ticketVersion!)))).toEqual(sorted(everyKey));
    for (const name of EXAMPLES) {
      const listed = (await deliveriesOf(webhooks[name].id)).map((d) => eventKey(d.event, d.ticketId!, d.ticketVersion!));
      expect(sorted(listed), name).toEqual(sorted(expected.filter((e) => e.matched.includes(name)).map((e) => e.key)));
    }
    const misses = EXAMPLES.reduce((sum, name) => sum + expected.filter((e) => !e.matched.includes(name)).length, 0);
    expect(await filteredOutTotal()).toBe(filteredOutBefore + misses);

    // At the receiver: the unfiltered webhook's requests are the barrier, then each example's
    // deliveries are all finished, and the receiver got exactly those.
    await waitFor('the unfiltered webhook to get every event', () => requestsTo('/examples/all').length >= everyKey.length);
    expect(sorted(requestsTo('/examples/all').map(keyOfRequest))).toEqual(sorted(everyKey));
    for (const name of EXAMPLES) {
      await waitFor(`the deliveries of ${name} to finish`, async () => (await deliveriesOf(webhooks[name].id)).every((d) => d.status === 'succeeded'));
      const received = requestsTo(`/examples/${name}`).map(keyOfRequest);
      expect(sorted(received), name).toEqual(sorted(expected.filter((e) => e.matched.includes(name)).map((e) => e.key)));
    }
  });

  it('ignores the filter for test events and redeliveries, and applies a changed filter to the next events', async () => {
    const webhook = await subscribe('/ignored', { 'ticket.tags': 'escalated' });
    const first = await server.request('POST', '/tickets', { body: { ticket: { subject: 'Escalated', tags: ['escalated'] } } });
    const plain = await server.request('POST', '/tickets', { body: { ticket: { subject: 'Plain' } } });
    expect([first.status, plain.status]).toEqual([201, 201]);
    const [delivery, ...others] = await deliveriesOf(webhook.id);
    expect(others).toEqual([]);
    expect([delivery!.event, delivery!.ticketId]).toEqual(['ticket.created', first.body.ticket.id]);
    await waitFor('the first delivery', async () => (await deliveriesOf(webhook.id))[0]!.status === 'succeeded');

    const changed = await server.request('PUT', `/webhooks/${webhook.id}`, { body: { webhook: { filter: { 'ticket.tags': 'never-used' } } } });
    expect(changed.status).toBe(200);
    expect(changed.body.webhook.filter).toEqual({ 'ticket.tags': 'never-used' });
    expect((await server.request('POST', '/tickets', { body: { ticket: { subject: 'Escalated again', tags: ['escalated'] } } })).status).toBe(201);
    expect(await deliveriesOf(webhook.id)).toHaveLength(1);

    const test = await server.request('POST', `/webhooks/${webhook.id}/test`);
    expect(test.status).toBe(202);
    const redelivered = await server.request('POST', `/webhooks/${webhook.id}/deliveries/${delivery!.id}/redeliver`);
    expect(redelivered.status).toBe(202);
    await waitFor('the test event and the redelivery', () => requestsTo('/ignored').length >= 3);
    const received = requestsTo('/ignored');
    expect(received.map((r) => (JSON.parse(r.body) as { event: string }).event).sort()).toEqual(['ticket.created', 'ticket.created', 'webhook.test']);
    expect(received.filter((r) => r.headers['webhook-id'] === delivery!.id)).toHaveLength(2);
  });

  it('refuses every operator outside the list with a 400 naming its path, on POST and PUT, and changes nothing', async () => {
    const target = await subscribe('/refused', { 'ticket.priority': 'urgent' });
    const before = await server.request('GET', `/webhooks/${target.id}`);
    const count = await webhookCount();
    for (const [what, filter, path] of REFUSED) {
      const created = await server.request('POST', '/webhooks', { body: { webhook: { name: what, targetUrl: receiver.url('/refused'), events: ['ticket.created'], filter } } });
      expectValidationFailed(created, `webhook.filter${path}`);
      const updated = await server.request('PUT', `/webhooks/${target.id}`, { body: { webhook: { filter } } });
      expectValidationFailed(updated, `webhook.filter${path}`);
    }
    expect(await webhookCount()).toBe(count);
    expect((await server.request('GET', `/webhooks/${target.id}`)).body).toEqual(before.body);
  });

  it('accepts a filter of 4096 bytes and 6 levels, and refuses one byte or one level more', async () => {
    const target = await subscribe('/limits', null);
    const before = await server.request('GET', `/webhooks/${target.id}`);
    const count = await webhookCount();
    expect(JSON.stringify(filterOfBytes(4096))).toHaveLength(4096);

    const refused: [string, Record<string, unknown>, string][] = [
      ['4097 bytes', filterOfBytes(4097), 'webhook.filter'],
      // The filter, the $and array, its object, ..., a seventh level.
      ['7 levels of $and', nestedAnd(3), 'webhook.filter.$and[0].$and[0].$and[0]'],
      ['7 levels of a compared value', nestedValue(6), 'webhook.filter["ticket.customFields"].k1.k2.k3.k4.k5'],
    ];
    for (const [what, filter, path] of refused) {
      const created = await server.request('POST', '/webhooks', { body: { webhook: { name: what, targetUrl: receiver.url('/limits'), events: ['ticket.created'], filter } } });
      expectValidationFailed(created, path);
      expectValidationFailed(await server.request('PUT', `/webhooks/${target.id}`, { body: { webhook: { filter } } }), path);
    }
    expect(await webhookCount()).toBe(count);
    expect((await server.request('GET', `/webhooks/${target.id}`)).body).toEqual(before.body);

    for (const filter of [filterOfBytes(4096), nestedAnd(2), nestedValue(5)]) {
      const created = await server.request('POST', '/webhooks', { body: { webhook: { name: 'at the limit', targetUrl: receiver.url('/limits'), events: ['ticket.created'], filter } } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect(created.body.webhook.filter).toEqual(filter);
      const updated = await server.request('PUT', `/webhooks/${target.id}`, { body: { webhook: { filter } } });
      expect(updated.status).toBe(200);
      expect(updated.body.webhook.filter).toEqual(filter);
    }
  });

  it('stores the filter as given; null and {} get every event', async () => {
    const given = { $or: [{ 'ticket.priority': { $in: ['urgent', 'high'] } }, { 'ticket.tags': { $all: ['vip', 'eu'] }, 'ticket.customFields.seats': { $gte: 100 } }], 'ticket.status': { $nin: ['closed'] } };
    const asGiven = await subscribe('/as-given', given);
    const none = await subscribe('/none', null);
    const empty = await subscribe('/empty', {});
    const omitted = await subscribe('/omitted', undefined);
    for (const [webhook, filter] of [[asGiven, given], [none, null], [empty, {}], [omitted, null]] as const) {
      const got = await server.request('GET', `/webhooks/${webhook.id}`);
      expect(got.body.webhook.filter).toEqual(filter);
      const listed = (await server.request('GET', '/webhooks?limit=100')).body.webhooks.find((w: { id: string }) => w.id === webhook.id);
      expect(listed.filter).toEqual(filter);
    }
    // Key order is kept too: "returned as given".
    expect(JSON.stringify((await server.request('GET', `/webhooks/${asGiven.id}`)).body.webhook.filter)).toBe(JSON.stringify(given));

    const ticket = await server.request('POST', '/tickets', { body: { ticket: { subject: 'Anything', priority: 'low' } } });
    await server.request('PUT', `/tickets/${ticket.body.ticket.id}`, { body: { ticket: { status: 'resolved' } } });
    await server.request('DELETE', `/tickets/${ticket.body.ticket.id}`);
    for (const webhook of [none, empty, omitted]) {
      expect((await deliveriesOf(webhook.id)).map((d) => d.event).sort()).toEqual(['ticket.created', 'ticket.deleted', 'ticket.resolved', 'ticket.updated']);
    }
    expect(await deliveriesOf(asGiven.id)).toEqual([]);

    // Back to null: every event again.
    const cleared = await server.request('PUT', `/webhooks/${asGiven.id}`, { body: { webhook: { filter: null } } });
    expect(cleared.body.webhook.filter).toBeNull();
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'After clearing' } } });
    expect((await deliveriesOf(asGiven.id)).map((d) => d.event)).toEqual(['ticket.created']);
  });

  it('previews a filter on the last 20 ticket events, newest first, with their documents, saving nothing', async () => {
    const agent = await server.keyFor('agent');
    const count = await webhookCount();
    const made: { type: string; ticketId: string; version: number }[] = [];
    const createTicket = async (ticket: Record<string, unknown>) => {
      const response = await server.request('POST', '/tickets', { body: { ticket } });
      made.push({ type: 'ticket.created', ticketId: response.body.ticket.id, version: 1 });
      return response.body.ticket as { id: string; version: number };
    };
    const updateTicket = async (id: string, patch: Record<string, unknown>, types: string[]) => {
      const response = await server.request('PUT', `/tickets/${id}`, { body: { ticket: patch } });
      expect(response.status).toBe(200);
      for (const type of types) made.push({ type, ticketId: id, version: response.body.ticket.version });
      return response.body.ticket as { id: string; version: number };
    };
    // Events on one ticket (its changes are 1 ms apart at least), then the ones to look at.
    const busy = await createTicket({ subject: 'Busy', priority: 'low' });
    for (let i = 0; i < 14; i += 1) await updateTicket(busy.id, { subject: `Busy ${i}` }, ['ticket.updated']);
    await updateTicket(busy.id, { status: 'resolved', assigneeId: agent.userId }, ['ticket.updated', 'ticket.assignment.changed', 'ticket.resolved']);
    const reopened = await updateTicket(busy.id, { status: 'open' }, ['ticket.updated']);
    const urgent = await createTicket({ subject: 'Server down', priority: 'urgent', tags: ['vip'], customFields: { region: 'EU' } });
    const subjectOnly = await updateTicket(urgent.id, { subject: 'Server down in Frankfurt' }, ['ticket.updated']);
    expect((await server.request('DELETE', `/tickets/${busy.id}`)).status).toBe(204);
    made.push({ type: 'ticket.deleted', ticketId: busy.id, version: reopened.version + 1 });
    expect(made.length).toBeGreaterThan(20);

    const filter = { 'ticket.priority': { $in: ['urgent', 'high'] } };
    const preview = await server.request('POST', '/webhooks/filter-preview', { body: { filter } });
    expect(preview.status, JSON.stringify(preview.body)).toBe(200);
    const events = preview.body.events as { id: string; type: string; ticketId: string; ticketVersion: number; createdAt: string; document: { event: string; ticket: Record<string, unknown>; changes: Record<string, unknown> }; matched: boolean }[];
    expect(events).toHaveLength(20);
    const newest = made.slice(-20).reverse();
    // Events of one change share their time: among themselves, the last made comes first.
    const resolveVersion = made.find((e) => e.type === 'ticket.resolved')!.version;
    expect(events.filter((e) => e.ticketId === busy.id && e.ticketVersion === resolveVersion).map((e) => e.type)).toEqual(['ticket.resolved', 'ticket.assignment.changed', 'ticket.updated']);
    const groups = (list: { type: string; ticketId: string; version: number }[]) => list.map((e) => `${e.ticketId} v${e.version}`);
    expect(groups(events.map((e) => ({ type: e.type, ticketId: e.ticketId, version: e.ticketVersion })))).toEqual(groups(newest));
    expect(sorted(events.map((e) => eventKey(e.type, e.ticketId, e.ticketVersion)))).toEqual(sorted(newest.map((e) => eventKey(e.type, e.ticketId, e.version))));
    for (let i = 1; i < events.length; i += 1) expect(events[i - 1]!.createdAt >= events[i]!.createdAt).toBe(true);

    const [deleted, updated, created] = events;
    expect(deleted).toMatchObject({ type: 'ticket.deleted', ticketId: busy.id, matched: false, document: { event: 'ticket.deleted', changes: {} } });
    expect(deleted!.document.ticket).toMatchObject({ id: busy.id, priority: 'low', status: 'open', version: reopened.version + 1 });
    // Its payload has only the subject; the document has the whole urgent ticket.
    expect(updated).toMatchObject({ type: 'ticket.updated', ticketId: urgent.id, ticketVersion: subjectOnly.version, matched: true });
    expect(updated!.document).toEqual({
      event: 'ticket.updated',
      ticket: (await server.request('GET', `/tickets/${urgent.id}`)).body.ticket,
      changes: { subject: { from: 'Server down', to: 'Server down in Frankfurt' } },
    });
    expect(created).toMatchObject({ type: 'ticket.created', ticketId: urgent.id, matched: true, document: { event: 'ticket.created', changes: {}, ticket: { priority: 'urgent', tags: ['vip'], customFields: { region: 'EU' } } } });
    expect(events.filter((e) => e.matched).map((e) => e.ticketId)).toEqual([urgent.id, urgent.id]);
    const assignment = events.find((e) => e.type === 'ticket.assignment.changed')!;
    expect(assignment.document.changes).toEqual({ status: { from: 'open', to: 'resolved' }, assigneeId: { from: null, to: agent.userId } });

    // Each example on the same events.
    const matchedBy = async (body: Record<string, unknown>) => {
      const response = await server.request('POST', '/webhooks/filter-preview', { body });
      expect(response.status, JSON.stringify(response.body)).toBe(200);
      return (response.body.events as { type: string; ticketId: string; matched: boolean }[]).filter((e) => e.matched).map((e) => `${e.type} ${e.ticketId}`);
    };
    expect(await matchedBy({ filter: { 'changes.status.to': 'resolved' } })).toHaveLength(3);
    expect(sorted(await matchedBy({ filter: { 'changes.status.to': 'resolved' } }))).toEqual(sorted(['ticket.updated', 'ticket.assignment.changed', 'ticket.resolved'].map((t) => `${t} ${busy.id}`)));
    expect(await matchedBy({ filter: { 'ticket.tags': 'vip' } })).toEqual([`ticket.updated ${urgent.id}`, `ticket.created ${urgent.id}`]);
    expect(await matchedBy({ filter: { 'ticket.customFields.region': 'EU' } })).toEqual([`ticket.updated ${urgent.id}`, `ticket.created ${urgent.id}`]);
    // Assigned from the resolving change on, the deletion included (the ticket as it was).
    expect((await matchedBy({ filter: { 'ticket.assigneeId': agent.userId } })).filter((m) => m.endsWith(busy.id))).toHaveLength(5);
    // Null matches every event; `events` leaves out the other types.
    expect(await matchedBy({ filter: null })).toHaveLength(20);
    expect(await matchedBy({ filter: null, events: ['ticket.created'] })).toEqual([`ticket.created ${urgent.id}`]);
    expect(await matchedBy({ filter, events: ['ticket.updated'] })).toEqual([`ticket.updated ${urgent.id}`]);

    for (const [bad, path] of [
      [{ $where: '1' }, 'filter.$where'],
      [{ 'ticket.subject': { $regex: 'x' } }, 'filter["ticket.subject"].$regex'],
      [filterOfBytes(4097), 'filter'],
      [nestedAnd(3), 'filter.$and[0].$and[0].$and[0]'],
    ] as const) {
      expectValidationFailed(await server.request('POST', '/webhooks/filter-preview', { body: { filter: bad } }), path);
    }
    expect(await webhookCount()).toBe(count);
  });
});
