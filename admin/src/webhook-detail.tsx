/**
 * One webhook: its settings and actions (activate, deactivate, rotate the secret, send a test
 * event, delete), and its deliveries, refreshed while the page is open. Each delivery opens to
 * its payload, the headers it was sent with, and every attempt with the receiver's answer.
 */
import { useState } from 'preact/hooks';
import { EVENT_TYPES, TEST_EVENT_TYPE, type Attempt, type Delivery, type DeliveryDetail, type Webhook, type WebhookStats } from './api.js';
import { breakerText, ColumnHeads, ConfirmDialog, errorsFrom, formatTime, isoToLocalInput, localInputToIso, navigate, SecretDialog, StatusBadge, usePolled, usePolling, useSession } from './ui.js';

const REFRESH_MS = 2_000;

export function WebhookDetail({ webhookId }: { webhookId: string }) {
  const { api, notify } = useSession();
  const [webhook, setWebhook] = useState<Webhook | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);

  usePolling(
    async () => (await api<{ webhook: Webhook }>('GET', `/webhooks/${webhookId}`)).webhook,
    setWebhook,
    (caught) => setError((caught as Error).message),
    REFRESH_MS * 5,
    [webhookId],
  );
  const { value: stats } = usePolled(async () => (await api<{ stats: WebhookStats }>('GET', `/webhooks/${webhookId}/stats`)).stats, REFRESH_MS, [webhookId]);

  const act = async (what: string, run: () => Promise<void>) => {
    try {
      await run();
      notify(what);
    } catch (caught) {
      setError(errorsFrom(caught, 'webhook').form ?? (caught as Error).message);
    }
  };
  const setActive = (active: boolean) =>
    act(active ? 'Webhook activated.' : 'Webhook deactivated: its pending deliveries are marked failed.', async () => {
      setWebhook((await api<{ webhook: Webhook }>('PUT', `/webhooks/${webhookId}`, { webhook: { active } })).webhook);
    });
  const rotate = () =>
    act('Signing secret rotated: the previous one stays valid for 24 hours.', async () => {
      const { webhook: rotated } = await api<{ webhook: Webhook }>('POST', `/webhooks/${webhookId}/rotate-secret`);
      setSecret(rotated.signingSecret ?? null);
    });
  const sendTest = () => act('Test event queued.', () => api('POST', `/webhooks/${webhookId}/test`));
  const remove = () =>
    act('Webhook deleted.', async () => {
      setConfirmDelete(false);
      await api('DELETE', `/webhooks/${webhookId}`);
      navigate('webhooks');
    });

  if (!webhook) return <p>{error ?? 'Loading…'}</p>;
  return (
    <section aria-labelledby="webhook-title">
      <p>
        <a href="#/webhooks">← Webhooks</a>
      </p>
      <div class="title-row">
        <h1 id="webhook-title">{webhook.name}</h1>
        <div class="actions">
          <a class="button" href={`#/webhooks/${webhookId}/edit`}>
            Edit
          </a>
          {webhook.active ? (
            <button type="button" onClick={() => setActive(false)}>
              Deactivate
            </button>
          ) : (
            <button type="button" onClick={() => setActive(true)}>
              Activate
            </button>
          )}
          <button type="button" onClick={rotate}>
            Rotate secret
          </button>
          <button type="button" onClick={sendTest}>
            Send test event
          </button>
          <button type="button" class="danger" onClick={() => setConfirmDelete(true)}>
            Delete
          </button>
        </div>
      </div>
      {error && <p class="form-error" role="alert">{error}</p>}
      <dl class="facts">
        <dt>Target</dt>
        <dd class="url">{webhook.targetUrl}</dd>
        <dt>Events</dt>
        <dd>{webhook.events.join(', ')}</dd>
        <dt>Active</dt>
        <dd>{webhook.active ? 'yes' : `no${webhook.disabledReason ? ` (disabled: ${webhook.disabledReason}, ${formatTime(webhook.disabledAt)})` : ''}`}</dd>
        <dt>Circuit breaker</dt>
        <dd>{stats === null ? '—' : breakerText(stats.breaker)}</dd>
        <dt>Id</dt>
        <dd>
          <code>{webhook.id}</code>
        </dd>
      </dl>
      <Deliveries webhook={webhook} />
      <ConfirmDialog
        open={confirmDelete}
        title="Delete this webhook?"
        message={`“${webhook.name}” and all of its deliveries will be deleted. Nothing more is sent to ${webhook.targetUrl}. This cannot be undone.`}
        confirm="Delete webhook"
        onConfirm={remove}
        onCancel={() => setConfirmDelete(false)}
      />
      <SecretDialog title="New signing secret" secret={secret} onClose={() => setSecret(null)} />
    </section>
  );
}

interface Filter {
  status: string;
  event: string;
  since: string;
}

function Deliveries({ webhook }: { webhook: Webhook }) {
  const { api, notify } = useSession();
  const [filter, setFilter] = useState<Filter>({ status: '', event: '', since: '' });
  const [open, setOpen] = useState<string | null>(null);
  // What the recover form was told; apart from the list's own failures, which a refresh clears.
  const [recoverError, setRecoverError] = useState<string | null>(null);
  const [recoverSince, setRecoverSince] = useState(() => isoToLocalInput(new Date(Date.now() - 24 * 3600 * 1000).toISOString()));

  const query = () => {
    const params = new URLSearchParams({ limit: '50', include: 'ticketVersion' });
    if (filter.status) params.set('status', filter.status);
    if (filter.event) params.set('event', filter.event);
    const since = localInputToIso(filter.since);
    if (since) params.set('since', since);
    return params.toString();
  };
  const { value: deliveries, error } = usePolled(
    async () => (await api<{ deliveries: Delivery[] }>('GET', `/webhooks/${webhook.id}/deliveries?${query()}`)).deliveries,
    REFRESH_MS,
    [webhook.id, filter.status, filter.event, filter.since],
  );

  const recover = async (event: Event) => {
    event.preventDefault();
    const since = localInputToIso(recoverSince);
    if (!since) return setRecoverError('Choose the time to recover from.');
    setRecoverError(null);
    try {
      const { recovered } = await api<{ recovered: number }>('POST', `/webhooks/${webhook.id}/recover`, { since });
      notify(`${recovered} failed ${recovered === 1 ? 'delivery' : 'deliveries'} queued again.`);
    } catch (caught) {
      setRecoverError(errorsFrom(caught, 'recover').form ?? (caught as Error).message);
    }
  };

  return (
    <section aria-labelledby="deliveries-title">
      <h2 id="deliveries-title">Deliveries</h2>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter deliveries">
        <div class="field">
          <label for="filter-status">Status</label>
          <select id="filter-status" value={filter.status} onChange={(e) => setFilter({ ...filter, status: e.currentTarget.value })}>
            <option value="">any</option>
            <option value="pending">pending</option>
            <option value="succeeded">succeeded</option>
            <option value="failed">failed</option>
          </select>
        </div>
        <div class="field">
          <label for="filter-event">Event</label>
          <select id="filter-event" value={filter.event} onChange={(e) => setFilter({ ...filter, event: e.currentTarget.value })}>
            <option value="">any</option>
            {[...EVENT_TYPES, TEST_EVENT_TYPE].map((type) => (
              <option key={type} value={type}>
                {type}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="filter-since">Created since</label>
          <input id="filter-since" type="datetime-local" value={filter.since} onChange={(e) => setFilter({ ...filter, since: e.currentTarget.value })} />
        </div>
      </form>
      <form class="filters" onSubmit={recover} aria-label="Recover failed deliveries">
        <div class="field">
          <label for="recover-since">Recover failed deliveries created since</label>
          <input id="recover-since" type="datetime-local" value={recoverSince} onChange={(e) => setRecoverSince(e.currentTarget.value)} />
        </div>
        <button type="submit">Recover failed</button>
      </form>
      {recoverError && <p class="form-error" role="alert">{recoverError}</p>}
      {error && <p class="form-error" role="alert">{error}</p>}
      <p class="hint" aria-hidden="true">
        Refreshed every {REFRESH_MS / 1000} s.
      </p>
      {deliveries === null ? (
        <p>Loading…</p>
      ) : deliveries.length === 0 ? (
        <p>No deliveries{filter.status || filter.event || filter.since ? ' match these filters' : ' yet'}.</p>
      ) : (
        <table>
          <caption class="visually-hidden">Deliveries of {webhook.name}, newest first</caption>
          <ColumnHeads names={['Created', 'Event', 'Version', 'Status', 'Attempts', 'Last answer', 'Next attempt', 'Actions']} hidden={['Actions']} />
          <tbody>
            {deliveries.map((delivery) => (
              <DeliveryRow key={delivery.id} webhook={webhook} delivery={delivery} open={open === delivery.id} onToggle={() => setOpen(open === delivery.id ? null : delivery.id)} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function DeliveryRow(props: { webhook: Webhook; delivery: Delivery; open: boolean; onToggle: () => void }) {
  const { api, notify } = useSession();
  const { delivery } = props;
  const redeliver = async () => {
    try {
      await api('POST', `/webhooks/${props.webhook.id}/deliveries/${delivery.id}/redeliver`);
      notify('Redelivery queued: one attempt now, with the same webhook-id.');
    } catch (caught) {
      notify((caught as Error).message);
    }
  };
  return (
    <>
      <tr data-delivery-id={delivery.id}>
        <td>{formatTime(delivery.createdAt)}</td>
        <td>{delivery.event}</td>
        <td>{delivery.ticketVersion ?? '—'}</td>
        <td>
          <StatusBadge status={delivery.status} />
        </td>
        <td>{delivery.attemptCount}</td>
        <td>{delivery.lastStatusCode ?? '—'}</td>
        <td>{delivery.status === 'pending' && delivery.nextAttemptAt === null ? 'held: after an earlier delivery of its ticket' : formatTime(delivery.nextAttemptAt)}</td>
        <td class="row-actions">
          <button type="button" aria-expanded={props.open} aria-controls={`delivery-${delivery.id}`} onClick={props.onToggle}>
            {props.open ? 'Hide' : 'Details'}
          </button>
          <button type="button" onClick={redeliver}>
            Redeliver
          </button>
        </td>
      </tr>
      {props.open && (
        <tr class="detail-row">
          <td colSpan={8} id={`delivery-${delivery.id}`}>
            <DeliveryPanel webhook={props.webhook} delivery={delivery} />
          </td>
        </tr>
      )}
    </>
  );
}

/** The headers of an attempt, as the worker sends them (docs/delivery.md); the signature is not stored. */
function headersSent(webhook: Webhook, delivery: Delivery, attempt: Attempt | undefined): [string, string][] {
  return [
    ['content-type', 'application/json'],
    ['user-agent', 'Helpdesk-Webhooks/<server version>'],
    ['webhook-id', delivery.id],
    ['webhook-timestamp', attempt ? String(Math.floor(Date.parse(attempt.at) / 1000)) : '(the Unix time of each attempt)'],
    ['webhook-signature', 'v1,<HMAC-SHA256 of each attempt, with every live signing secret; not stored>'],
    ['x-helpdesk-event', delivery.event],
    ['x-helpdesk-webhook-id', webhook.id],
  ];
}

function DeliveryPanel({ webhook, delivery }: { webhook: Webhook; delivery: Delivery }) {
  const { api } = useSession();
  const { value: detail, error } = usePolled(
    async () => (await api<{ delivery: DeliveryDetail }>('GET', `/webhooks/${webhook.id}/deliveries/${delivery.id}`)).delivery,
    REFRESH_MS,
    [delivery.id, delivery.attemptCount, delivery.status],
  );
  if (!detail) return <p>{error ?? 'Loading…'}</p>;
  return (
    <div class="delivery-panel">
      {error && <p class="form-error" role="alert">{error}</p>}
      {/* The list asks for each delivery's ticket version; none for a test event. */}
      {delivery.ticketVersion != null && (
        <p>
          Ticket version <strong>{delivery.ticketVersion}</strong>
        </p>
      )}
      <h3>Payload</h3>
      <pre>{JSON.stringify(detail.payload, null, 2)}</pre>
      <h3>Headers sent</h3>
      <table class="headers">
        <tbody>
          {headersSent(webhook, delivery, detail.attempts.at(-1)).map(([name, value]) => (
            <tr key={name}>
              <th scope="row">{name}</th>
              <td>
                <code>{value}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Attempts</h3>
      {detail.attempts.length === 0 ? (
        <p>No attempt yet.</p>
      ) : (
        <ol class="attempts">
          {detail.attempts.map((attempt) => (
            <li key={attempt.id} class={attempt.error ? 'attempt failed' : 'attempt succeeded'}>
              <p>
                <strong>{attempt.statusCode ?? 'no answer'}</strong>
                {attempt.error && <span class="error-kind"> {attempt.error}</span>} · {attempt.durationMs} ms · {formatTime(attempt.at)}
              </p>
              {attempt.responseHeaders && (
                <details>
                  <summary>Response headers</summary>
                  <pre>{Object.entries(attempt.responseHeaders).map(([k, v]) => `${k}: ${v}`).join('\n')}</pre>
                </details>
              )}
              <p class="label">Response body</p>
              <pre class="response-body">{attempt.responseBody === null || attempt.responseBody === '' ? '(empty)' : attempt.responseBody}</pre>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
