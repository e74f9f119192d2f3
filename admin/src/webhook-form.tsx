/**
 * Create or edit a webhook. The form checks what the API checks (docs/api.md: name 1..200
 * characters, an https URL without credentials of at most 2048, at least one event, a filter
 * that is a JSON object, header names that are tokens, a rate limit of 1..10000) before sending,
 * and shows the API's own errors next to the fields when it refuses anyway (a private address, a
 * refused filter operator, a reserved header name). After creation the signing secret is shown once.
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, MAX_RATE_LIMIT, OPERATIONAL_EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES, TICKET_EVENT_TYPES, type ErrorDetail, type Webhook } from './api.js';
import { FilterEditor, filterText, isFilterPath, parseFilter } from './filter-editor.js';
import { headerDetails, headerProblemsFrom, headerRowProblems, HeadersEditor, headersToSend, isHeadersPath, rowsFromWebhook, type HeaderRow } from './headers-editor.js';
import { errorsFrom, FieldError, FormError, navigate, noErrors, SecretDialog, useSession, type FormErrors } from './ui.js';

interface Draft {
  name: string;
  targetUrl: string;
  events: string[];
  active: boolean;
  /** The filter as typed: empty for none (every event of the types chosen). */
  filter: string;
  headers: HeaderRow[];
  /** As typed: empty for no limit. */
  rateLimit: string;
}

interface HeaderProblems {
  byRow: Map<number, string>;
  set: string | null;
}

const noHeaderProblems: HeaderProblems = { byRow: new Map(), set: null };

/** The rate limit a draft asks for: null for none, NaN when it is not a whole number. */
function rateLimitOf(text: string): number | null {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  return /^\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
}

export function validateWebhook(draft: Draft): Record<string, string> {
  const errors: Record<string, string> = {};
  const name = draft.name.trim();
  if (name.length === 0) errors.name = 'is required';
  else if (name.length > 200) errors.name = 'must be at most 200 characters';
  if (draft.targetUrl.length === 0) errors.targetUrl = 'is required';
  else if (draft.targetUrl.length > 2048) errors.targetUrl = 'must be at most 2048 characters';
  else {
    let url: URL | null = null;
    try {
      url = new URL(draft.targetUrl);
    } catch {
      errors.targetUrl = 'must be a valid URL';
    }
    if (url && url.protocol !== 'https:') errors.targetUrl = 'must be an https URL';
    else if (url && (url.username || url.password)) errors.targetUrl = 'must not contain credentials';
  }
  if (draft.events.length === 0) errors.events = 'choose at least one event';
  const rateLimit = rateLimitOf(draft.rateLimit);
  if (rateLimit !== null && !(rateLimit >= 1 && rateLimit <= MAX_RATE_LIMIT)) errors.rateLimit = `must be a whole number from 1 to ${MAX_RATE_LIMIT}, or empty for no limit`;
  return errors;
}

export function WebhookForm({ webhookId }: { webhookId: string | null }) {
  const { api, notify } = useSession();
  const [draft, setDraft] = useState<Draft>({ name: '', targetUrl: '', events: ['ticket.created'], active: true, filter: '', headers: [], rateLimit: '' });
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [filterProblems, setFilterProblems] = useState<ErrorDetail[]>([]);
  const [headerProblems, setHeaderProblems] = useState<HeaderProblems>(noHeaderProblems);
  const [loaded, setLoaded] = useState(webhookId === null);
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<Webhook | null>(null);

  useEffect(() => {
    if (webhookId === null) return;
    api<{ webhook: Webhook }>('GET', `/webhooks/${webhookId}`).then(
      ({ webhook }) => {
        setDraft({
          name: webhook.name,
          targetUrl: webhook.targetUrl,
          events: webhook.events,
          active: webhook.active,
          filter: filterText(webhook.filter),
          headers: rowsFromWebhook(webhook.headers),
          rateLimit: webhook.rateLimit === null ? '' : String(webhook.rateLimit),
        });
        setLoaded(true);
      },
      (error: unknown) => setErrors({ fields: {}, form: (error as Error).message }),
    );
  }, [webhookId]);

  const submit = async (event: Event) => {
    event.preventDefault();
    const fields = validateWebhook(draft);
    const filter = parseFilter(draft.filter);
    const rowProblems = headerRowProblems(draft.headers);
    setFilterProblems(filter.problem ? [filter.problem] : []);
    setHeaderProblems({ byRow: rowProblems, set: null });
    if (Object.keys(fields).length > 0 || filter.problem || rowProblems.size > 0) return setErrors({ fields, form: 'Some fields need fixing.' });
    setBusy(true);
    setErrors(noErrors);
    const body = {
      webhook: {
        name: draft.name.trim(),
        targetUrl: draft.targetUrl,
        events: draft.events,
        active: draft.active,
        filter: filter.filter,
        // The whole set: a PUT replaces it, so a removed row is a removed header.
        headers: headersToSend(draft.headers),
        rateLimit: rateLimitOf(draft.rateLimit),
      },
    };
    try {
      if (webhookId === null) {
        const { webhook } = await api<{ webhook: Webhook }>('POST', '/webhooks', body);
        setCreated(webhook);
      } else {
        await api('PUT', `/webhooks/${webhookId}`, body);
        navigate(`webhooks/${webhookId}`);
        notify('Webhook saved.');
      }
    } catch (caught) {
      showRefusal(caught);
    } finally {
      setBusy(false);
    }
  };

  /** The filter's and the headers' details go to their editors, with their paths; the rest next to their fields. */
  const showRefusal = (caught: unknown) => {
    if (!(caught instanceof ApiError)) return setErrors(errorsFrom(caught, 'webhook'));
    const ofFilter = caught.details.filter((d) => isFilterPath(d.path));
    const ofHeaders = headerDetails(caught);
    setFilterProblems(ofFilter);
    setHeaderProblems(ofHeaders.length > 0 ? headerProblemsFrom(ofHeaders, draft.headers) : noHeaderProblems);
    const rest = caught.details.filter((d) => !isFilterPath(d.path) && !isHeadersPath(d.path));
    const others = errorsFrom(new ApiError(caught.status, caught.code, caught.message, rest), 'webhook');
    setErrors(ofFilter.length + ofHeaders.length > 0 && rest.length === 0 ? { fields: {}, form: 'Some fields need fixing.' } : others);
  };

  // A refusal names places in the text: once the text changes they may point at nothing.
  const onFilterText = (filter: string) => {
    setFilterProblems([]);
    setDraft({ ...draft, filter });
  };

  const toggleEvent = (type: string, on: boolean) =>
    setDraft({ ...draft, events: on ? SUBSCRIBABLE_EVENT_TYPES.filter((t) => t === type || draft.events.includes(t)) : draft.events.filter((t) => t !== type) });
  const eventChoice = (type: string) => (
    <label class="check" key={type}>
      <input type="checkbox" checked={draft.events.includes(type)} onChange={(e) => toggleEvent(type, e.currentTarget.checked)} /> {type}
    </label>
  );
  const invalid = (field: string) => (errors.fields[field] ? { 'aria-invalid': 'true' as const, 'aria-describedby': `${field}-error` } : {});

  return (
    <section aria-labelledby="webhook-form-title">
      <h1 id="webhook-form-title">{webhookId === null ? 'New webhook' : 'Edit webhook'}</h1>
      {!loaded ? (
        <p>Loading…</p>
      ) : (
        <form onSubmit={submit} noValidate>
          <FormError message={errors.form} />
          <div class="field">
            <label for="webhook-name">Name</label>
            <input id="webhook-name" value={draft.name} maxLength={200} onInput={(e) => setDraft({ ...draft, name: e.currentTarget.value })} {...invalid('name')} />
            <FieldError id="name-error" message={errors.fields.name} />
          </div>
          <div class="field">
            <label for="webhook-target">Target URL</label>
            <input id="webhook-target" type="url" inputMode="url" placeholder="https://example.com/webhooks/helpdesk" value={draft.targetUrl} onInput={(e) => setDraft({ ...draft, targetUrl: e.currentTarget.value })} {...invalid('targetUrl')} />
            <p class="hint">HTTPS only. Private and loopback addresses are refused unless the server allows them.</p>
            <FieldError id="targetUrl-error" message={errors.fields.targetUrl} />
          </div>
          <fieldset class="field" {...invalid('events')}>
            <legend>Events</legend>
            <p class="hint">Ticket events</p>
            {TICKET_EVENT_TYPES.map(eventChoice)}
            <p class="hint" id="operational-events-hint">
              Operational events: another webhook deactivated automatically, a ticket event's delivery failed for good. The filter below does not apply to them.
            </p>
            {OPERATIONAL_EVENT_TYPES.map(eventChoice)}
            <FieldError id="events-error" message={errors.fields.events} />
          </fieldset>
          <FilterEditor text={draft.filter} onText={onFilterText} events={draft.events} problems={filterProblems} />
          <HeadersEditor rows={draft.headers} onRows={(headers) => setDraft({ ...draft, headers })} problems={headerProblems.byRow} setProblem={headerProblems.set} />
          <div class="field">
            <label for="webhook-rate-limit">Rate limit (deliveries per second)</label>
            <input
              id="webhook-rate-limit"
              class="short"
              inputMode="numeric"
              autocomplete="off"
              placeholder="no limit"
              value={draft.rateLimit}
              onInput={(e) => setDraft({ ...draft, rateLimit: e.currentTarget.value })}
              {...invalid('rateLimit')}
            />
            <p class="hint">{`Empty for no limit, or 1 to ${MAX_RATE_LIMIT}: at most this many deliveries a second go to the receiver, across every worker. The others wait their turn in the queue, without spending an attempt.`}</p>
            <FieldError id="rateLimit-error" message={errors.fields.rateLimit} />
          </div>
          <div class="field">
            <label class="check">
              <input type="checkbox" checked={draft.active} onChange={(e) => setDraft({ ...draft, active: e.currentTarget.checked })} /> Active
            </label>
            <FieldError id="active-error" message={errors.fields.active} />
          </div>
          <div class="actions">
            <a class="button" href={webhookId === null ? '#/webhooks' : `#/webhooks/${webhookId}`}>
              Cancel
            </a>
            <button type="submit" class="primary" disabled={busy}>
              {webhookId === null ? 'Create webhook' : 'Save'}
            </button>
          </div>
        </form>
      )}
      <SecretDialog
        title="Webhook created"
        secret={created?.signingSecret ?? null}
        onClose={() => {
          const id = created?.id;
          setCreated(null);
          if (id) navigate(`webhooks/${id}`);
        }}
      />
    </section>
  );
}
