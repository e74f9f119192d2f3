/**
 * The filter checker and matcher (src/webhooks/webhook-filter.ts) without a server: the paths a
 * refusal names, the limits at their edges, and what the examples of docs/api.md match.
 */
import { describe, expect, it } from 'vitest';
import type { FilterDocument } from '../../../src/events/filter-document.js';
import { compileFilter, filterMatcherCache, filterProblems, MAX_FILTER_BYTES } from '../../../src/webhooks/webhook-filter.js';

const pathsOf = (filter: unknown) => filterProblems(filter, 'webhook.filter').map((p) => p.path);

function document(ticket: Record<string, unknown>, changes: Record<string, unknown> = {}, event = 'ticket.updated'): FilterDocument {
  return { event, ticket: { priority: 'normal', status: 'open', tags: [], customFields: {}, assigneeId: null, ...ticket }, changes };
}

describe('filterProblems', () => {
  it.each<[unknown, string]>([
    [{ $where: '1' }, 'webhook.filter.$where'],
    [{ $expr: { $eq: [1, 1] } }, 'webhook.filter.$expr'],
    [{ $function: {} }, 'webhook.filter.$function'],
    [{ $text: { $search: 'x' } }, 'webhook.filter.$text'],
    [{ $jsonSchema: {} }, 'webhook.filter.$jsonSchema'],
    [{ $comment: 'x' }, 'webhook.filter.$comment'],
    [{ 'ticket.subject': { $regex: 'x' } }, 'webhook.filter["ticket.subject"].$regex'],
    [{ 'ticket.subject': { $options: 'i' } }, 'webhook.filter["ticket.subject"].$options'],
    [{ 'ticket.tags': { $elemMatch: { $eq: 'vip' } } }, 'webhook.filter["ticket.tags"].$elemMatch'],
    [{ 'ticket.version': { $mod: [2, 0] } }, 'webhook.filter["ticket.version"].$mod'],
    [{ 'ticket.assigneeId': { $type: 'string' } }, 'webhook.filter["ticket.assigneeId"].$type'],
    [{ 'ticket.priority': { $foo: 1 } }, 'webhook.filter["ticket.priority"].$foo'],
    [{ $not: { 'ticket.priority': 'low' } }, 'webhook.filter.$not'],
    [{ $eq: 'low' }, 'webhook.filter.$eq'],
    [{ 'ticket.priority': { $eq: 'high', x: 1 } }, 'webhook.filter["ticket.priority"].x'],
    [{ $or: [{ 'ticket.priority': 'low' }, { 'ticket.priority': { $regex: '^u' } }] }, 'webhook.filter.$or[1]["ticket.priority"].$regex'],
    [{ 'ticket.priority': { $in: [{ $regex: 'x' }] } }, 'webhook.filter["ticket.priority"].$in[0].$regex'],
    [{ 'ticket.subject': { $not: { $regex: 'x' } } }, 'webhook.filter["ticket.subject"].$not.$regex'],
    [{ 'ticket.$where': 1 }, 'webhook.filter["ticket.$where"]'],
    [{ 'a..b': 1 }, 'webhook.filter["a..b"]'],
    [{ $and: [] }, 'webhook.filter.$and'],
    [{ $or: {} }, 'webhook.filter.$or'],
    [{ x: { $nin: 'a' } }, 'webhook.filter.x.$nin'],
    [{ x: { $exists: 'yes' } }, 'webhook.filter.x.$exists'],
    [{ x: { $size: -1 } }, 'webhook.filter.x.$size'],
    [{ x: { $not: 'low' } }, 'webhook.filter.x.$not'],
    [{ x: { $gt: 1, $and: [{ y: 1 }] } }, 'webhook.filter.x.$and'],
    [[{ x: 1 }], 'webhook.filter'],
    ['{"x": 1}', 'webhook.filter'],
  ])('refuses %j at %s', (filter, path) => {
    expect(pathsOf(filter)).toEqual([path]);
  });

  it('measures the size as compact JSON in bytes, not characters', () => {
    const base = JSON.stringify({ s: '' }).length;
    expect(pathsOf({ s: 'x'.repeat(MAX_FILTER_BYTES - base) })).toEqual([]);
    expect(pathsOf({ s: 'x'.repeat(MAX_FILTER_BYTES - base + 1) })).toEqual(['webhook.filter']);
    // 'é' is two bytes in UTF-8.
    expect(pathsOf({ s: 'é'.repeat((MAX_FILTER_BYTES - base) / 2 + 1) })).toEqual(['webhook.filter']);
  });

  it('counts the filter as level 1 and each object or array inside as one more', () => {
    expect(pathsOf({ $and: [{ $and: [{ x: 1 }] }] })).toEqual([]);
    expect(pathsOf({ $and: [{ $and: [{ $and: [{ x: 1 }] }] }] })).toEqual(['webhook.filter.$and[0].$and[0].$and[0]']);
    expect(pathsOf({ x: { a: { b: { c: { d: 1 } } } } })).toEqual([]);
    expect(pathsOf({ x: { $in: [[[[['deep']]]]] } })).toEqual(['webhook.filter.x.$in[0][0][0][0]']);
    expect(pathsOf({ x: { $not: { $not: { $not: { $not: { $not: { $eq: 1 } } } } } } })).toEqual(['webhook.filter.x.$not.$not.$not.$not.$not']);
  });

  it('accepts every operator of the list', () => {
    const filter = {
      $and: [{ 'ticket.priority': { $in: ['urgent'], $nin: ['low'], $ne: 'normal', $eq: 'urgent' } }, { 'ticket.version': { $gt: 0, $gte: 1, $lt: 9, $lte: 8 } }],
      $or: [{ 'ticket.tags': { $all: ['vip'], $size: 1 } }, { 'ticket.assigneeId': { $exists: true } }],
      $nor: [{ 'ticket.status': { $not: { $in: ['open'] } } }],
    };
    expect(pathsOf(filter)).toEqual([]);
    expect(pathsOf({})).toEqual([]);
  });
});

describe('compileFilter', () => {
  it('matches the examples of the docs against the whole ticket after the change', () => {
    const urgent = compileFilter({ 'ticket.priority': { $in: ['urgent', 'high'] } });
    expect(urgent(document({ priority: 'high' }, { subject: { from: 'a', to: 'b' } }))).toBe(true);
    expect(urgent(document({ priority: 'low' }, { priority: { from: 'urgent', to: 'low' } }))).toBe(false);
    const vip = compileFilter({ 'ticket.tags': 'vip' });
    expect([vip(document({ tags: ['billing', 'vip'] })), vip(document({ tags: ['vipish'] }))]).toEqual([true, false]);
    const resolved = compileFilter({ 'changes.status.to': 'resolved' });
    expect([resolved(document({ status: 'resolved' }, { status: { from: 'open', to: 'resolved' } })), resolved(document({ status: 'resolved' }))]).toEqual([true, false]);
    const region = compileFilter({ 'ticket.customFields.region': 'EU' });
    expect([region(document({ customFields: { region: 'EU' } })), region(document({ customFields: { region: 'eu' } }))]).toEqual([true, false]);
  });

  it('reads only the document\'s own fields, never what objects inherit', () => {
    // A custom field named like an Object.prototype member is absent until it is set.
    const missing = compileFilter({ 'ticket.customFields.constructor': { $exists: false } });
    expect(missing(document({ customFields: {} }))).toBe(true);
    expect(missing(document({ customFields: { constructor: 'x' } }))).toBe(false);
    expect(compileFilter({ 'ticket.constructor.name': 'Object' })(document({}))).toBe(false);
    expect(compileFilter({ 'ticket.customFields.toString': { $exists: true } })(document({}))).toBe(false);
    expect(compileFilter({ 'changes.hasOwnProperty': { $exists: true } })(document({}))).toBe(false);
    // Comparisons of whole objects still work.
    expect(compileFilter({ 'ticket.customFields': { region: 'EU' } })(document({ customFields: { region: 'EU' } }))).toBe(true);
    expect(compileFilter({ changes: {} })(document({}))).toBe(true);
  });

  it('compiles a stored filter once per distinct text', () => {
    const text = JSON.stringify({ 'ticket.tags': 'vip' });
    const matcherOf = filterMatcherCache();
    expect(matcherOf(text)).toBe(matcherOf(text));
    expect(matcherOf(text)(document({ tags: ['vip'] }))).toBe(true);
  });
});
