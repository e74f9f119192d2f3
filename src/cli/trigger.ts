/**
 * `helpdesk trigger <event type>`: makes a sample ticket change that emits that event, through the
 * API like any client, so that a receiver (or `helpdesk listen`) has something to show. The
 * ticket id goes to stdout, alone on its line, for scripts; what was made goes to stderr.
 */
import { TICKET_EVENT_TYPES, type TicketEventType } from '../events/event-types.js';
import { HelpdeskApiClient, type ApiAnswer } from '../outbound/api-client.js';
import { API_BASE } from '../shared/api-base.js';
import { ClientFailure, describeAnswer, keyRefusal, serverSettings, UsageError, type ServerFlags, type ServerSettings } from './api-client-settings.js';

export interface TriggerOptions extends ServerSettings {
  type: TicketEventType;
}

export function triggerOptions(type: string | undefined, flags: ServerFlags, env: NodeJS.ProcessEnv | undefined): TriggerOptions {
  const known: readonly string[] = TICKET_EVENT_TYPES;
  if (type === undefined) throw new UsageError(`trigger needs an event type: one of ${TICKET_EVENT_TYPES.join(', ')}`);
  if (!known.includes(type)) throw new UsageError(`"${type}" is not an event type trigger can make; the types are ${TICKET_EVENT_TYPES.join(', ')}`);
  return { type: type as TicketEventType, ...serverSettings(flags, env, 'trigger') };
}

/** What the sample change made: the events in the order the server records them (docs/api.md, "Events and payloads"). */
export interface TriggerResult {
  ticketId: string;
  events: TicketEventType[];
}

const SAMPLE_TICKET = {
  subject: 'Sample ticket from helpdesk trigger',
  description: 'Made by "npx helpdesk trigger" to show a webhook receiver a real event.',
  tags: ['sample'],
};

/** The one user a sample assignment needs, made only on a server that has none yet. */
const SAMPLE_ASSIGNEE = { name: 'Sample Assignee', email: 'sample-assignee@example.com', role: 'agent' };

export async function trigger(options: TriggerOptions): Promise<TriggerResult> {
  const client = new HelpdeskApiClient(options.serverUrl, options.apiKey);
  const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, expected: number, body?: unknown): Promise<ApiAnswer> => {
    let answer: ApiAnswer;
    try {
      answer = await client.call(method, path, body);
    } catch (error) {
      throw new ClientFailure(`${(error as Error).message} (is "helpdesk serve" running there? --url chooses the server)`, { cause: error });
    }
    if (answer.status === expected) return answer;
    throw keyRefusal(answer, options.serverUrl) ?? new ClientFailure(`${method} ${API_BASE}${path} answered ${describeAnswer(answer)}`);
  };
  const ticketOf = (answer: ApiAnswer) => (answer.body as { ticket: { id: string } }).ticket;

  try {
    const ticket = ticketOf(await call('POST', '/tickets', 201, { ticket: SAMPLE_TICKET }));
    const path = `/tickets/${encodeURIComponent(ticket.id)}`;
    switch (options.type) {
      case 'ticket.created':
        return { ticketId: ticket.id, events: ['ticket.created'] };
      case 'ticket.updated':
        await call('PUT', path, 200, { ticket: { priority: 'high' } });
        return { ticketId: ticket.id, events: ['ticket.created', 'ticket.updated'] };
      case 'ticket.assignment.changed': {
        const assigneeId = await someUserId(call);
        await call('PUT', path, 200, { ticket: { assigneeId } });
        return { ticketId: ticket.id, events: ['ticket.created', 'ticket.updated', 'ticket.assignment.changed'] };
      }
      case 'ticket.resolved':
        await call('PUT', path, 200, { ticket: { status: 'resolved' } });
        return { ticketId: ticket.id, events: ['ticket.created', 'ticket.updated', 'ticket.resolved'] };
      case 'ticket.deleted':
        await call('DELETE', path, 204);
        return { ticketId: ticket.id, events: ['ticket.created', 'ticket.deleted'] };
    }
  } finally {
    await client.close();
  }
}

/** Any user will do as an assignee; a server started with only HELPDESK_ADMIN_TOKEN may have none. */
async function someUserId(call: (method: 'GET' | 'POST', path: string, expected: number, body?: unknown) => Promise<ApiAnswer>): Promise<string> {
  const users = (await call('GET', '/users?limit=1', 200)).body as { users: { id: string }[] };
  if (users.users[0]) return users.users[0].id;
  const created = (await call('POST', '/users', 201, { user: SAMPLE_ASSIGNEE })).body as { user: { id: string } };
  return created.user.id;
}
