/**
 * A webhook's filter (docs/api.md, "Filters"): its JSON beside the document it is matched
 * against, a few examples to start from, and a trial on the last ticket events through
 * `POST /webhooks/filter-preview`, which saves nothing. The form checks only that the text is a
 * JSON object; the operators, the size and the depth are the API's to judge, and its details
 * (a path and a message each) are listed under the editor.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, type ErrorDetail, type FilterDocument, type PreviewedEvent, type Schemas } from './api.js';
import { ColumnHeads, FormError, Time, useSession } from './ui.js';

type Filter = NonNullable<Schemas['Webhook']['filter']>;

/** The filter a text stands for (empty: none, every event), or why it cannot be sent. */
export type ParsedFilter = { filter: Filter | null; problem?: undefined } | { filter?: undefined; problem: ErrorDetail };

export function parseFilter(text: string): ParsedFilter {
  if (text.trim() === '') return { filter: null };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { problem: { path: 'filter', message: `is not valid JSON: ${(error as Error).message}` } };
  }
  if (value === null) return { filter: null };
  if (typeof value !== 'object' || Array.isArray(value)) return { problem: { path: 'filter', message: 'must be a JSON object, such as {"ticket.tags": "vip"}, or empty for every event' } };
  return { filter: value as Filter };
}

/** The text a stored filter is edited as. */
export function filterText(filter: Filter | null): string {
  return filter === null ? '' : JSON.stringify(filter, null, 2);
}

/** The API's details about the filter: `filter…` from the preview, `webhook.filter…` from a save. */
export function isFilterPath(path: string): boolean {
  return /^(webhook\.)?filter($|[.[])/.test(path);
}

/** A detail's path as the admin reads it against the editor: from `filter`, whichever request gave it. */
const shownPath = (path: string) => path.replace(/^webhook\./, '');

/** Shown as the document when no ticket event is kept yet: a change that made an urgent ticket. */
const SAMPLE_DOCUMENT: FilterDocument = {
  event: 'ticket.updated',
  ticket: {
    id: 'tkt_0193a1b2c3d4e5f60718293a4b5c6d7e',
    subject: 'Printer on fire',
    description: 'Smoke from the second-floor printer.',
    status: 'open',
    priority: 'urgent',
    assigneeId: 'usr_0193a1b2c3d4e5f60718293a4b5c6d7f',
    requesterEmail: 'ada@example.com',
    tags: ['hardware', 'vip'],
    customFields: { region: 'EU' },
    version: 2,
    createdAt: '2026-11-27T09:12:03.000Z',
    updatedAt: '2026-11-27T09:15:44.000Z',
  },
  changes: { priority: { from: 'normal', to: 'urgent' } },
};

/** Stands for an agent's id in the example when the server has no agent to offer. */
const AGENT_PLACEHOLDER = 'usr_<the agent’s user id>';

/** The examples of docs/api.md, "Filters"; the agent's is made with a real id when there is one. */
function examples(agentId: string): { label: string; filter: Filter }[] {
  return [
    { label: 'Urgent or high priority', filter: { 'ticket.priority': { $in: ['urgent', 'high'] } } },
    { label: 'Tagged vip', filter: { 'ticket.tags': 'vip' } },
    { label: 'Status changed to resolved', filter: { 'changes.status.to': 'resolved' } },
    { label: 'Assigned to an agent', filter: { 'ticket.assigneeId': agentId } },
    { label: 'Region is EU', filter: { 'ticket.customFields.region': 'EU' } },
  ];
}

interface Trial {
  /** The filter text and event types it was made with: when they change, the results are stale. */
  text: string;
  events: string;
  results: PreviewedEvent[];
}

export function FilterEditor(props: { text: string; onText: (text: string) => void; events: string[]; problems: ErrorDetail[] }) {
  const { api } = useSession();
  const [latest, setLatest] = useState<PreviewedEvent | null>(null);
  const [picked, setPicked] = useState<PreviewedEvent | null>(null);
  const [trial, setTrial] = useState<Trial | null>(null);
  const [trialProblems, setTrialProblems] = useState<ErrorDetail[]>([]);
  const [trialError, setTrialError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [agentNote, setAgentNote] = useState<string | null>(null);

  // The latest event's document, to write the filter against what is really there; without
  // one (no ticket event yet, or the request failed) the sample stands in.
  useEffect(() => {
    let live = true;
    api<{ events: PreviewedEvent[] }>('POST', '/webhooks/filter-preview', { filter: null }).then(
      ({ events }) => live && setLatest(events[0] ?? null),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, []);

  const edit = (text: string) => {
    setTrialProblems([]);
    props.onText(text);
  };

  const applyExample = async (label: string) => {
    let agentId = AGENT_PLACEHOLDER;
    setAgentNote(null);
    if (label === 'Assigned to an agent') {
      try {
        const { users } = await api<{ users: Schemas['User'][] }>('GET', '/users?limit=100');
        const agent = users.find((user) => user.role === 'agent');
        if (agent) agentId = agent.id;
        setAgentNote(agent ? `The id is ${agent.name}’s, the first agent in Users and keys: put another agent’s id in its place if needed.` : 'There is no agent yet: put the agent’s user id in place of the placeholder.');
      } catch {
        setAgentNote('The users could not be listed: put the agent’s user id in place of the placeholder.');
      }
    }
    const example = examples(agentId).find((e) => e.label === label)!;
    edit(filterText(example.filter));
  };

  const tryIt = async () => {
    setTrialError(null);
    const parsed = parseFilter(props.text);
    if (parsed.problem) {
      setTrial(null);
      return setTrialProblems([parsed.problem]);
    }
    if (props.events.length === 0) return setTrialError('Choose at least one event type above first: an event of another type would not be sent.');
    setBusy(true);
    try {
      const { events } = await api<{ events: PreviewedEvent[] }>('POST', '/webhooks/filter-preview', { filter: parsed.filter, events: props.events });
      setTrial({ text: props.text, events: props.events.join(), results: events });
      setTrialProblems([]);
      if (events[0]) setLatest(events[0]);
    } catch (caught) {
      setTrial(null);
      const details = caught instanceof ApiError ? caught.details.filter((d) => isFilterPath(d.path)) : [];
      if (details.length > 0) setTrialProblems(details);
      else setTrialError((caught as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const problems = trialProblems.length > 0 ? trialProblems : props.problems;
  const shown = picked ?? latest;
  const stale = trial !== null && (trial.text !== props.text || trial.events !== props.events.join());
  return (
    <div class="field filter-field">
      <label for="webhook-filter">Filter</label>
      <p class="hint" id="filter-hint">
        Empty: every event of the types above. Otherwise a MongoDB query over the event’s document, shown with the box, using the operators <code>$eq $ne $in $nin $gt $gte $lt $lte $exists $all $size $and $or $nor $not</code>; an event it does not match is not sent.
      </p>
      <div class="filter-editor">
        <div class="filter-input">
          <textarea
            id="webhook-filter"
            rows={9}
            spellcheck={false}
            autocomplete="off"
            placeholder={'{"ticket.priority": {"$in": ["urgent", "high"]}}'}
            value={props.text}
            onInput={(e) => edit(e.currentTarget.value)}
            aria-describedby={problems.length > 0 ? 'filter-error filter-hint' : 'filter-hint'}
            {...(problems.length > 0 ? { 'aria-invalid': 'true' as const } : {})}
          />
          {problems.length > 0 && (
            <ul class="field-error detail-list" id="filter-error" role="alert">
              {problems.map((problem) => (
                <li key={`${problem.path} ${problem.message}`}>
                  <code>{shownPath(problem.path)}</code> {problem.message}
                </li>
              ))}
            </ul>
          )}
          <div class="examples" role="group" aria-labelledby="filter-examples-label">
            <span class="label" id="filter-examples-label">
              Examples
            </span>
            {examples(AGENT_PLACEHOLDER).map(({ label, filter }) => (
              <button type="button" key={label} class="example" title={JSON.stringify(filter)} onClick={() => void applyExample(label)}>
                {label}
              </button>
            ))}
          </div>
          {agentNote && <p class="hint">{agentNote}</p>}
          <div class="actions">
            <button type="button" onClick={tryIt} disabled={busy}>
              Try it on the last 20 events
            </button>
          </div>
        </div>
        <div class="filter-document">
          <p class="label" id="filter-document-title">
            What the filter is matched against
          </p>
          <p class="hint">
            {shown ? (
              <>
                {picked ? 'The event chosen below' : 'The latest ticket event'}: <code>{shown.type}</code>, ticket version {shown.ticketVersion ?? '—'}.
              </>
            ) : (
              'A sample: no ticket event is kept yet.'
            )}
          </p>
          <pre aria-labelledby="filter-document-title" class="filter-document-json">
            {JSON.stringify(shown?.document ?? SAMPLE_DOCUMENT, null, 2)}
          </pre>
          <p class="hint">
            <code>event</code> is the type; <code>ticket</code> the whole ticket after the change (as it was, for a deletion); <code>changes</code> each field the change changed, as{' '}
            <code>{'{"from", "to"}'}</code>, and <code>{'{}'}</code> for a creation or a deletion. Dotted paths reach inside: <code>changes.status.to</code>, <code>ticket.customFields.region</code>; on an array
            such as <code>ticket.tags</code>, a value matches when any element does.
          </p>
        </div>
      </div>
      <FormError message={trialError} />
      {trial && <TrialResults trial={trial} events={props.events} stale={stale} picked={picked?.id ?? null} onPick={(event) => setPicked(picked?.id === event.id ? null : event)} />}
    </div>
  );
}

const TRIAL_COLUMNS = ['Would match', 'Event', 'Ticket', 'Time', 'Document'];

function TrialResults(props: { trial: Trial; events: string[]; stale: boolean; picked: string | null; onPick: (event: PreviewedEvent) => void }) {
  const { results } = props.trial;
  const subscribed = props.trial.events.split(',');
  const matched = results.filter((event) => event.matched).length;
  return (
    <div class="filter-trial">
      <p class="trial-count" aria-live="polite">
        {results.length === 0 ? 'No ticket event is kept yet: create or change a ticket, then try again.' : `${matched} of ${results.length} would have matched`}
      </p>
      {props.stale && <p class="hint">The filter or the event types changed since this trial: try again to see the change.</p>}
      {results.length > 0 && (
        <table class="stack trial-events">
          <caption class="visually-hidden">The last {results.length} ticket events, newest first, and whether this filter would have sent each</caption>
          <ColumnHeads names={TRIAL_COLUMNS} />
          <tbody>
            {results.map((event) => (
              <tr key={event.id} data-event-id={event.id} data-matched={String(event.matched)}>
                <td data-label="Would match">
                  {event.matched ? (
                    <span class="badge badge-matched">matched</span>
                  ) : (
                    <>
                      <span class="badge badge-unmatched">no</span>
                      {!subscribed.includes(event.type) && <span class="hint"> type not chosen</span>}
                    </>
                  )}
                </td>
                <td data-label="Event">{event.type}</td>
                <td data-label="Ticket">
                  {/* Not a link: following it would leave the form and its unsaved edits. */}
                  <span title={event.ticketId} class="ticket-id">{`…${event.ticketId.slice(-8)}`}</span>
                  {event.ticketVersion !== null && <span class="hint"> v{event.ticketVersion}</span>}
                </td>
                <td data-label="Time">
                  <Time iso={event.createdAt} />
                </td>
                <td data-label="Document">
                  <button type="button" aria-pressed={props.picked === event.id} onClick={() => props.onPick(event)}>
                    {props.picked === event.id ? 'Shown' : 'Show'}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
