/**
 * Create or edit a webhook. The form checks what the API checks (docs/api.md: name 1..200
 * characters, an https URL without credentials of at most 2048, at least one event) before
 * sending, and shows the API's own errors next to the fields when it refuses anyway (a private
 * address, say). After creation the signing secret is shown once.
 */
import { useEffect, useState } from 'preact/hooks';
import { EVENT_TYPES, type Webhook } from './api.js';
import { errorsFrom, FieldError, FormError, navigate, noErrors, SecretDialog, useSession, type FormErrors } from './ui.js';

interface Draft {
  name: string;
  targetUrl: string;
  events: string[];
  active: boolean;
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
  return errors;
}

export function WebhookForm({ webhookId }: { webhookId: string | null }) {
  const { api, notify } = useSession();
  const [draft, setDraft] = useState<Draft>({ name: '', targetUrl: '', events: ['ticket.created'], active: true });
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [loaded, setLoaded] = useState(webhookId === null);
  const [busy, setBusy] = useState(false);
  const [created, setCreated] = useState<Webhook | null>(null);

  useEffect(() => {
    if (webhookId === null) return;
    api<{ webhook: Webhook }>('GET', `/webhooks/${webhookId}`).then(
      ({ webhook }) => {
        setDraft({ name: webhook.name, targetUrl: webhook.targetUrl, events: webhook.events, active: webhook.active });
        setLoaded(true);
      },
      (error: unknown) => setErrors({ fields: {}, form: (error as Error).message }),
    );
  }, [webhookId]);

  const submit = async (event: Event) => {
    event.preventDefault();
    const fields = validateWebhook(draft);
    if (Object.keys(fields).length > 0) return setErrors({ fields, form: 'Some fields need fixing.' });
    setBusy(true);
    setErrors(noErrors);
    const body = { webhook: { ...draft, name: draft.name.trim() } };
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
      setErrors(errorsFrom(caught, 'webhook'));
    } finally {
      setBusy(false);
    }
  };

  const toggleEvent = (type: string, on: boolean) =>
    setDraft({ ...draft, events: on ? EVENT_TYPES.filter((t) => t === type || draft.events.includes(t)) : draft.events.filter((t) => t !== type) });
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
            {EVENT_TYPES.map((type) => (
              <label class="check" key={type}>
                <input type="checkbox" checked={draft.events.includes(type)} onChange={(e) => toggleEvent(type, e.currentTarget.checked)} /> {type}
              </label>
            ))}
            <FieldError id="events-error" message={errors.fields.events} />
          </fieldset>
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
