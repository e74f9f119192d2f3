/**
 * One webhook: its settings and actions (activate, deactivate, rotate the secret, send a test
 * event, delete; the ones that cannot be taken back ask first), and its deliveries, refreshed
 * while the page is open. Each delivery opens to its payload, the headers it was sent with, and
 * every attempt with the receiver's answer.
 */
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { isOperationalEventType, SUBSCRIBABLE_EVENT_TYPES, TEST_EVENT_TYPE, type Attempt, type Delivery, type DeliveryDetail, type Webhook } from './api.js';
import {
  breakerText,
  ColumnHeads,
  ConfirmDialog,
  errorsFrom,
  FormError,
  formatTime,
  hashQuery,
  isoToLocalInput,
  LoadState,
  localInputToIso,
  navigate,
  relativeTime,
  SecretDialog,
  StatusBadge,
  TargetUrl,
  Time,
  usePolled,
  useServerVersion,
  useSession,
} from './ui.js';
import type { Stats } from './webhooks.js';
import { ActivityCharts, type WebhookActivity } from './activity-charts.js';

const REFRESH_MS = 2_000;
/** The charts' intervals are minutes long: a poll every half minute keeps the last one current. */
const ACTIVITY_REFRESH_MS = 30_000;

/** A delivery as the list gives it with `include=ticketVersion,ticketId,lastError` (docs/api.md). */
export type ListedDelivery = Delivery & { ticketId?: string | null; lastError?: string | null };

export const LIST_INCLUDES = 'ticketVersion,ticketId,lastError';

/** What each kind of failed attempt means (docs/delivery.md, "Success, failure and timeouts"). */
export const ERROR_TEXT: Record<string, string> = {
  timeout: 'no answer in time: more than 5 s to connect, or 15 s in all',
  connection_refused: 'the target refused the connection',
  connection_reset: 'the connection broke before a full answer',
  dns: 'the host name did not resolve',
  tls: 'the TLS handshake or certificate check failed',
  blocked_address: 'the address is in a blocked range; nothing was sent',
  redirect: 'the answer was a redirect, which is not followed',
  http_status: 'the answer was not a 2xx',
};

/**
 * The receiver's last answer in a list: its status code, or, when none came (a connection or TLS
 * failure), the kind of failure and what it means.
 */
export function LastAnswer({ delivery }: { delivery: ListedDelivery }) {
  if (delivery.lastStatusCode !== null) return <>{delivery.lastStatusCode}</>;
  if (delivery.lastError) {
    return (
      <span class="answer-error">
        <span class="error-kind">{delivery.lastError}</span> <span class="hint">{ERROR_TEXT[delivery.lastError] ?? ''}</span>
      </span>
    );
  }
  return <>{delivery.attemptCount === 0 ? 'not attempted yet' : '—'}</>;
}

/** A ticket, by its id's tail (the id is in the title), and the version the event carries. */
export function TicketLink({ ticketId, version }: { ticketId: string | null | undefined; version: number | null | undefined }) {
  if (!ticketId) return <>—</>;
  return (
    <>
      <a href={`#/tickets/${ticketId}`} title={ticketId} class="ticket-link">
        {`…${ticketId.slice(-8)}`}
      </a>
      {version != null && <span class="hint"> v{version}</span>}
    </>
  );
}

type Confirming = 'delete' | 'deactivate' | 'rotate' | null;

export function WebhookDetail({ webhookId }: { webhookId: string }) {
  const { api, notify } = useSession();
  const [actionError, setActionError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<Confirming>(null);
  const [secret, setSecret] = useState<string | null>(null);
  const [changed, setChanged] = useState<Webhook | null>(null);

  const polled = usePolled(async () => (await api<{ webhook: Webhook }>('GET', `/webhooks/${webhookId}`)).webhook, REFRESH_MS * 5, [webhookId]);
  const { value: stats } = usePolled(async () => (await api<{ stats: Stats }>('GET', `/webhooks/${webhookId}/stats`)).stats, REFRESH_MS, [webhookId]);
  const { value: activity } = usePolled(async () => (await api<{ activity: WebhookActivity }>('GET', `/webhooks/${webhookId}/activity`)).activity, ACTIVITY_REFRESH_MS, [webhookId]);
  // An action's answer shows at once, before the next poll brings the same.
  const webhook = changed && polled.value && changed.updatedAt >= polled.value.updatedAt ? changed : polled.value;

  const act = async (what: string, run: () => Promise<void>) => {
    setConfirming(null);
    try {
      await run();
      setActionError(null);
      notify(what);
    } catch (caught) {
      setActionError(errorsFrom(caught, 'webhook').form ?? (caught as Error).message);
    }
  };
  const setActive = (active: boolean) =>
    act(active ? 'Webhook activated.' : 'Webhook deactivated: its pending deliveries are marked failed.', async () => {
      setChanged((await api<{ webhook: Webhook }>('PUT', `/webhooks/${webhookId}`, { webhook: { active } })).webhook);
    });
  const rotate = () =>
    act('Signing secret rotated: the previous one stays valid for 24 hours.', async () => {
      const { webhook: rotated } = await api<{ webhook: Webhook }>('POST', `/webhooks/${webhookId}/rotate-secret`);
      setSecret(rotated.signingSecret ?? null);
    });
  const sendTest = () => act('Test event queued.', () => api('POST', `/webhooks/${webhookId}/test`));
  const remove = () =>
    act('Webhook deleted.', async () => {
      await api('DELETE', `/webhooks/${webhookId}`);
      navigate('webhooks');
    });

  if (!webhook) {
    if (polled.status === 404) {
      return (
        <section aria-labelledby="webhook-title">
          <h1 id="webhook-title">Webhook not found</h1>
          <p>
            There is no webhook <code>{webhookId}</code>: it may have been deleted.
          </p>
          <p>
            <a href="#/webhooks">← Back to the webhooks</a>
          </p>
        </section>
      );
    }
    return <LoadState error={polled.error} retry={polled.retry} />;
  }
  const pending = stats?.deliveries.pending ?? 0;
  const confirmations: Record<Exclude<Confirming, null>, { title: string; message: ComponentChildren; confirm: string; tone: 'danger' | 'primary'; run: () => void }> = {
    delete: {
      title: 'Delete this webhook?',
      message: <p>{`“${webhook.name}” and all of its deliveries will be deleted. Nothing more is sent to ${webhook.targetUrl}. This cannot be undone.`}</p>,
      confirm: 'Delete webhook',
      tone: 'danger',
      run: remove,
    },
    deactivate: {
      title: 'Deactivate this webhook?',
      message: (
        <>
          <p>{`Nothing more is sent to ${webhook.targetUrl} until it is activated again, and the events of that time are not sent later.`}</p>
          <p>
            <strong>Every pending delivery is marked failed</strong>
            {pending > 0 ? ` (${pending} created in the last 24 hours)` : ''}. After activating it again, <em>Recover failed</em> queues them once more.
          </p>
        </>
      ),
      confirm: 'Deactivate',
      tone: 'danger',
      run: () => void setActive(false),
    },
    rotate: {
      title: 'Rotate the signing secret?',
      message: (
        <>
          <p>A new signing secret is made and shown once. Every delivery is signed with it from now on.</p>
          <p>The current secret stays valid for 24 hours (deliveries carry both signatures meanwhile): update the receiver within that time.</p>
        </>
      ),
      confirm: 'Rotate secret',
      tone: 'primary',
      run: () => void rotate(),
    },
  };
  const open = confirming ? confirmations[confirming] : null;
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
            <button type="button" onClick={() => setConfirming('deactivate')}>
              Deactivate
            </button>
          ) : (
            <button type="button" onClick={() => setActive(true)}>
              Activate
            </button>
          )}
          <button type="button" onClick={() => setConfirming('rotate')}>
            Rotate secret
          </button>
          <button type="button" onClick={sendTest}>
            Send test event
          </button>
          <button type="button" class="danger" onClick={() => setConfirming('delete')}>
            Delete
          </button>
        </div>
      </div>
      <FormError message={actionError} />
      <dl class="facts">
        <dt>Target</dt>
        <dd class="url">
          <TargetUrl url={webhook.targetUrl} />
        </dd>
        <dt>Events</dt>
        <dd>{webhook.events.join(', ')}</dd>
        <dt>Filter</dt>
        <dd class="webhook-filter">{webhook.filter === null ? 'every event of the subscribed types' : <pre>{JSON.stringify(webhook.filter, null, 2)}</pre>}</dd>
        <dt>Custom headers</dt>
        <dd class="webhook-headers">
          {Object.keys(webhook.headers).length === 0 ? (
            'none'
          ) : (
            <ul class="plain">
              {Object.entries(webhook.headers).map(([name, masked]) => (
                <li key={name}>
                  <code>{`${name}: ${masked}`}</code>
                </li>
              ))}
            </ul>
          )}
        </dd>
        <dt>Rate limit</dt>
        <dd class="webhook-rate-limit">{webhook.rateLimit === null ? 'no limit' : `${webhook.rateLimit} per second`}</dd>
        <dt>Active</dt>
        <dd>
          {webhook.active ? 'yes' : 'no'}
          {!webhook.active && webhook.disabledReason && (
            <>
              {` (disabled: ${webhook.disabledReason}, `}
              <Time iso={webhook.disabledAt} />)
            </>
          )}
        </dd>
        <dt>Circuit breaker</dt>
        <dd>{stats === null ? '—' : breakerText(stats.breaker)}</dd>
        <dt>Id</dt>
        <dd>
          <code>{webhook.id}</code>
        </dd>
      </dl>
      {activity && <ActivityCharts activity={activity} />}
      <Deliveries webhook={webhook} />
      <ConfirmDialog open={open !== null} title={open?.title ?? ''} message={open?.message} confirm={open?.confirm ?? ''} tone={open?.tone ?? 'danger'} onConfirm={() => open?.run()} onCancel={() => setConfirming(null)} />
      <SecretDialog title="New signing secret" secret={secret} onClose={() => setSecret(null)} />
    </section>
  );
}

interface Filter {
  status: string;
  event: string;
  since: string;
  /** A delivery id (`msg_`), the `webhook-id` a receiver logs. */
  id: string;
}

const DELIVERY_ID = /^msg_[A-Za-z0-9]{1,60}$/;
const COLUMNS = ['Created', 'Webhook-id', 'Event', 'Ticket', 'Status', 'Attempts', 'Last answer', 'Next attempt', 'Actions'];

function Deliveries({ webhook }: { webhook: Webhook }) {
  const { api, notify } = useSession();
  const linked = hashQuery().get('delivery');
  const [filter, setFilter] = useState<Filter>({ status: '', event: '', since: '', id: linked ?? '' });
  const [search, setSearch] = useState(linked ?? '');
  const [searchError, setSearchError] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(linked);
  // What the recover form was told; apart from the list's own failures, which a refresh clears.
  const [recoverError, setRecoverError] = useState<string | null>(null);
  // The tools fold away to leave the page to the list; open when something in them is on.
  const [showFilters, setShowFilters] = useState(false);
  const [showRecover, setShowRecover] = useState(false);
  const [recoverSince, setRecoverSince] = useState(() => isoToLocalInput(new Date(Date.now() - 24 * 3600 * 1000).toISOString()));

  const query = () => {
    const params = new URLSearchParams({ limit: '50', include: LIST_INCLUDES });
    if (filter.status) params.set('status', filter.status);
    if (filter.event) params.set('event', filter.event);
    if (filter.id) params.set('id', filter.id);
    const since = localInputToIso(filter.since);
    if (since) params.set('since', since);
    return params.toString();
  };
  const { value: deliveries, error, retry } = usePolled(
    async () => (await api<{ deliveries: ListedDelivery[] }>('GET', `/webhooks/${webhook.id}/deliveries?${query()}`)).deliveries,
    REFRESH_MS,
    [webhook.id, filter.status, filter.event, filter.since, filter.id],
  );

  const find = (event: Event) => {
    event.preventDefault();
    const id = search.trim();
    // The API refuses a malformed id with 400; said here, next to the field, before asking.
    if (id !== '' && !DELIVERY_ID.test(id)) return setSearchError('must be a delivery id: msg_ followed by letters and digits');
    setSearchError(null);
    setFilter({ ...filter, id });
    if (id) setOpen(id);
  };
  const clearSearch = () => {
    setSearch('');
    setSearchError(null);
    setFilter({ ...filter, id: '' });
  };

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

  const activeFilters = [filter.status, filter.event, filter.since].filter(Boolean).length;
  return (
    <section aria-labelledby="deliveries-title">
      <h2 id="deliveries-title">Deliveries</h2>
      <div class="toolbar">
        <form class="search" onSubmit={find} role="search" aria-label="Find a delivery">
          <label for="delivery-search">Find by webhook-id</label>
          <div class="search-row">
            <input
              id="delivery-search"
              type="search"
              placeholder="msg_…"
              spellcheck={false}
              autocomplete="off"
              value={search}
              onInput={(e) => setSearch(e.currentTarget.value)}
              {...(searchError ? { 'aria-invalid': 'true' as const, 'aria-describedby': 'delivery-search-error' } : {})}
            />
            <button type="submit">Find</button>
            {filter.id && (
              <button type="button" onClick={clearSearch}>
                Show all
              </button>
            )}
          </div>
          {searchError && (
            <p class="field-error" id="delivery-search-error">
              {searchError}
            </p>
          )}
        </form>
        <details class="tool" open={showFilters || activeFilters > 0} onToggle={(e) => setShowFilters(e.currentTarget.open)}>
          <summary>Filters{activeFilters > 0 ? ` (${activeFilters} on)` : ''}</summary>
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
                {[...SUBSCRIBABLE_EVENT_TYPES, TEST_EVENT_TYPE].map((type) => (
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
        </details>
        <details class="tool" open={showRecover || recoverError !== null} onToggle={(e) => setShowRecover(e.currentTarget.open)}>
          <summary>Recover failed deliveries</summary>
          <form class="filters" onSubmit={recover} aria-label="Recover failed deliveries">
            <div class="field">
              <label for="recover-since">Recover failed deliveries created since</label>
              <input id="recover-since" type="datetime-local" value={recoverSince} onChange={(e) => setRecoverSince(e.currentTarget.value)} />
            </div>
            <button type="submit">Recover failed</button>
          </form>
          <p class="hint">Each failed delivery created since then is queued again with a fresh retry schedule.</p>
          <FormError message={recoverError} />
        </details>
      </div>
      {deliveries === null ? (
        <LoadState error={error} retry={retry} />
      ) : (
        <>
          <FormError message={error} />
          <p class="hint" aria-hidden="true">
            Refreshed every {REFRESH_MS / 1000} s.
          </p>
          {deliveries.length === 0 ? (
            <p>{filter.id ? `No delivery ${filter.id} for this webhook.` : `No deliveries${activeFilters > 0 ? ' match these filters' : ' yet'}.`}</p>
          ) : (
            <table class="stack deliveries">
              <caption class="visually-hidden">Deliveries of {webhook.name}, newest first</caption>
              <ColumnHeads names={COLUMNS} hidden={['Actions']} />
              <tbody>
                {deliveries.map((delivery) => (
                  <DeliveryRow key={delivery.id} webhook={webhook} delivery={delivery} open={open === delivery.id} onToggle={() => setOpen(open === delivery.id ? null : delivery.id)} />
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}

function DeliveryRow(props: { webhook: Webhook; delivery: ListedDelivery; open: boolean; onToggle: () => void }) {
  const { api, notify } = useSession();
  const { delivery } = props;
  const redeliver = async () => {
    try {
      await api('POST', `/webhooks/${props.webhook.id}/deliveries/${delivery.id}/redeliver`);
      notify('Redelivery queued: one attempt now, with the same webhook-id.');
    } catch (caught) {
      notify((caught as Error).message, 'error');
    }
  };
  return (
    <>
      <tr data-delivery-id={delivery.id}>
        <td data-label="Created">
          <Time iso={delivery.createdAt} />
        </td>
        <td data-label="Webhook-id" class="delivery-id">
          <code>{delivery.id}</code>
        </td>
        <td data-label="Event">{delivery.event}</td>
        <td data-label="Ticket">
          <TicketLink ticketId={delivery.ticketId} version={delivery.ticketVersion} />
        </td>
        <td data-label="Status">
          <StatusBadge status={delivery.status} />
        </td>
        <td data-label="Attempts">{delivery.attemptCount}</td>
        <td data-label="Last answer">
          <LastAnswer delivery={delivery} />
        </td>
        <td data-label="Next attempt">{delivery.status === 'pending' && delivery.nextAttemptAt === null ? 'held: after an earlier delivery of its ticket' : <Time iso={delivery.nextAttemptAt} />}</td>
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
          <td colSpan={COLUMNS.length} id={`delivery-${delivery.id}`}>
            <DeliveryPanel webhook={props.webhook} delivery={delivery} />
          </td>
        </tr>
      )}
    </>
  );
}

/**
 * The headers of an attempt, as the worker sends them (docs/delivery.md), then the webhook's
 * custom headers by name; the signature is not stored. The user agent carries the server's version, read from its OpenAPI document.
 */
function headersSent(webhook: Webhook, delivery: Delivery, attempt: Attempt | undefined, version: string | null): [string, ComponentChildren][] {
  const seconds = attempt ? Math.floor(Date.parse(attempt.at) / 1000) : null;
  return [
    ['content-type', <code>application/json</code>],
    ['user-agent', <code>{`Helpdesk-Webhooks/${version ?? '…'}`}</code>],
    ['webhook-id', <code>{delivery.id}</code>],
    [
      'webhook-timestamp',
      seconds === null ? (
        <span class="hint">the Unix time of each attempt</span>
      ) : (
        <>
          <code>{seconds}</code> <span class="hint">({`${formatTime(attempt!.at)}, ${relativeTime(attempt!.at)}`}; of the last attempt)</span>
        </>
      ),
    ],
    ['webhook-signature', <span class="hint">v1,… an HMAC-SHA256 per live signing secret, made at each attempt and not stored</span>],
    ['x-helpdesk-event', <code>{delivery.event}</code>],
    ['x-helpdesk-webhook-id', <code>{webhook.id}</code>],
    // The webhook's custom headers as they are set now; their values never leave the server.
    ...Object.entries(webhook.headers).map(([name, masked]): [string, ComponentChildren] => [
      name,
      <>
        <code>{masked}</code> <span class="hint">a custom header of this webhook; its value is stored sealed and not shown</span>
      </>,
    ]),
  ];
}

/** An attempt's outcome in one line: the status once, or the kind of failure when no answer came. */
function AttemptOutcome({ attempt }: { attempt: Attempt }) {
  if (attempt.statusCode !== null) {
    // `http_status` says only that the status was not 2xx, which the status itself says; a
    // redirect is a status too, but its kind says why a 3xx failed.
    return (
      <>
        <strong>{attempt.statusCode}</strong>
        {attempt.error && attempt.error !== 'http_status' && <span class="error-kind"> {attempt.error}</span>}
      </>
    );
  }
  return (
    <>
      <strong>no answer</strong>
      {attempt.error && (
        <>
          {' '}
          <span class="error-kind">{attempt.error}</span>: {ERROR_TEXT[attempt.error] ?? ''}
        </>
      )}
    </>
  );
}

/** What an operational event reports, one click away: the webhook deactivated, or the delivery that failed in its webhook's log. */
function OperationalSubject({ event, payload }: { event: string; payload: unknown }) {
  if (!isOperationalEventType(event)) return null;
  const data = (payload as { data?: { webhook?: { id: string; name: string }; delivery?: { id: string; webhookId: string; event: string } } }).data;
  if (event === 'webhook.disabled' && data?.webhook) {
    return (
      <p class="operational-subject">
        Webhook <a href={`#/webhooks/${data.webhook.id}`}>{data.webhook.name}</a> was deactivated; its pending deliveries failed with it and can be recovered once it is active again.
      </p>
    );
  }
  if (event === 'delivery.failed' && data?.delivery) {
    return (
      <p class="operational-subject">
        A <code>{data.delivery.event}</code> delivery spent its retry schedule:{' '}
        <a href={`#/webhooks/${data.delivery.webhookId}?delivery=${data.delivery.id}`}>{data.delivery.id}</a>.
      </p>
    );
  }
  return null;
}

function DeliveryPanel({ webhook, delivery }: { webhook: Webhook; delivery: Delivery }) {
  const { api } = useSession();
  const version = useServerVersion();
  const { value: detail, error, retry } = usePolled(
    async () => (await api<{ delivery: DeliveryDetail }>('GET', `/webhooks/${webhook.id}/deliveries/${delivery.id}`)).delivery,
    REFRESH_MS,
    [delivery.id, delivery.attemptCount, delivery.status],
  );
  if (!detail) return <LoadState error={error} retry={retry} />;
  return (
    <div class="delivery-panel">
      <FormError message={error} />
      <OperationalSubject event={delivery.event} payload={detail.payload} />
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
          {headersSent(webhook, delivery, detail.attempts.at(-1), version).map(([name, value]) => (
            <tr key={name}>
              <th scope="row">{name}</th>
              <td>{value}</td>
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
              <p class="attempt-line">
                <AttemptOutcome attempt={attempt} /> · {attempt.durationMs} ms · <Time iso={attempt.at} />
                {attempt.statusCode !== null && (attempt.responseBody === null || attempt.responseBody === '') && <span class="hint"> · no body</span>}
              </p>
              {attempt.errorMessage && (
                <p class="error-message">
                  <span class="label">The network said</span> <code>{attempt.errorMessage}</code>
                </p>
              )}
              {attempt.responseHeaders && (
                <details>
                  <summary>Response headers</summary>
                  <pre>{Object.entries(attempt.responseHeaders).map(([k, v]) => `${k}: ${v}`).join('\n')}</pre>
                </details>
              )}
              {attempt.responseBody !== null && attempt.responseBody !== '' && (
                <>
                  <p class="label">Response body</p>
                  <pre class="response-body">{attempt.responseBody}</pre>
                </>
              )}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
