/** Tickets: a list, and a form to create or edit one, so that an admin can make an event happen. */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, TICKET_PRIORITIES, TICKET_STATUSES, type Ticket } from './api.js';
import { ColumnHeads, ConfirmDialog, errorsFrom, FieldError, FormError, LoadState, navigate, noErrors, StatusBadge, Time, usePolled, useSession, type FormErrors } from './ui.js';

export function TicketsPage() {
  const { api } = useSession();
  const { value: tickets, error, retry } = usePolled(async () => (await api<{ tickets: Ticket[] }>('GET', '/tickets?limit=50')).tickets, 10_000, []);
  return (
    <section aria-labelledby="tickets-title">
      <div class="title-row">
        <h1 id="tickets-title">Tickets</h1>
        <a class="button primary" href="#/tickets/new">
          New ticket
        </a>
      </div>
      {tickets === null ? (
        <LoadState error={error} retry={retry} />
      ) : (
        <>
          <FormError message={error} />
          {tickets.length === 0 ? (
            <p>No tickets yet.</p>
          ) : (
            <table class="stack">
              <caption class="visually-hidden">The 50 newest tickets</caption>
              <ColumnHeads names={['Subject', 'Status', 'Priority', 'Tags', 'Version', 'Updated', 'Deliveries']} />
              <tbody>
                {tickets.map((ticket) => (
                  <tr key={ticket.id}>
                    <td data-label="Subject" class="title-cell">
                      <a href={`#/tickets/${ticket.id}`}>{ticket.subject}</a>
                    </td>
                    <td data-label="Status">
                      <StatusBadge status={ticket.status} />
                    </td>
                    <td data-label="Priority">{ticket.priority}</td>
                    <td data-label="Tags">{ticket.tags.join(', ') || '—'}</td>
                    <td data-label="Version">{ticket.version}</td>
                    <td data-label="Updated">
                      <Time iso={ticket.updatedAt} />
                    </td>
                    <td data-label="Deliveries">
                      <a href={`#/tickets/${ticket.id}/deliveries`}>
                        Deliveries
                      </a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}

interface Draft {
  subject: string;
  description: string;
  status: string;
  priority: string;
  requesterEmail: string;
  tags: string;
}

const EMPTY: Draft = { subject: '', description: '', status: 'open', priority: 'normal', requesterEmail: '', tags: '' };

export function TicketForm({ ticketId }: { ticketId: string | null }) {
  const { api, notify } = useSession();
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [loaded, setLoaded] = useState(ticketId === null);
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [missing, setMissing] = useState(false);

  // A new ticket starts EMPTY and loads nothing. (No reset here: an effect runs after the first
  // paint, and would wipe what was typed meanwhile. Each ticket is a form of its own: main.tsx
  // keys the form by its ticket.)
  useEffect(() => {
    if (ticketId === null) return;
    api<{ ticket: Ticket }>('GET', `/tickets/${ticketId}`).then(
      ({ ticket }) => {
        setDraft({ subject: ticket.subject, description: ticket.description, status: ticket.status, priority: ticket.priority, requesterEmail: ticket.requesterEmail ?? '', tags: ticket.tags.join(', ') });
        setLoaded(true);
      },
      (error: unknown) => {
        if (error instanceof ApiError && error.status === 404) setMissing(true);
        setErrors({ fields: {}, form: (error as Error).message });
      },
    );
  }, [ticketId]);

  const remove = async () => {
    setConfirmDelete(false);
    try {
      await api('DELETE', `/tickets/${ticketId}`);
      navigate('tickets');
      notify('Ticket deleted: a ticket.deleted event goes to the webhooks that subscribe to it.');
    } catch (caught) {
      setErrors(errorsFrom(caught, 'ticket'));
    }
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    const subject = draft.subject.trim();
    if (subject.length === 0 || subject.length > 250) return setErrors({ fields: { subject: subject.length === 0 ? 'is required' : 'must be at most 250 characters' }, form: null });
    const ticket = {
      subject,
      description: draft.description,
      status: draft.status,
      priority: draft.priority,
      requesterEmail: draft.requesterEmail.trim() === '' ? null : draft.requesterEmail.trim(),
      tags: draft.tags.split(',').map((t) => t.trim()).filter(Boolean),
    };
    setBusy(true);
    setErrors(noErrors);
    try {
      if (ticketId === null) await api('POST', '/tickets', { ticket });
      else await api('PUT', `/tickets/${ticketId}`, { ticket });
      navigate('tickets');
      notify(ticketId === null ? 'Ticket created.' : 'Ticket saved.');
    } catch (caught) {
      setErrors(errorsFrom(caught, 'ticket'));
    } finally {
      setBusy(false);
    }
  };

  const input = (field: keyof Draft) => ({
    value: draft[field],
    onInput: (e: { currentTarget: { value: string } }) => setDraft({ ...draft, [field]: e.currentTarget.value }),
    ...(errors.fields[field] ? { 'aria-invalid': 'true' as const, 'aria-describedby': `${field}-error` } : {}),
  });

  return (
    <section aria-labelledby="ticket-form-title">
      <p>
        <a href="#/tickets">← Tickets</a>
      </p>
      <div class="title-row">
        <h1 id="ticket-form-title">{ticketId === null ? 'New ticket' : missing ? 'Ticket not found' : 'Edit ticket'}</h1>
        {ticketId !== null && loaded && (
          <div class="actions">
            <a class="button" href={`#/tickets/${ticketId}/deliveries`}>
              Deliveries of this ticket
            </a>
            <a class="button" href={`#/events?ticketId=${ticketId}`}>
              Events of this ticket
            </a>
            <button type="button" class="danger" onClick={() => setConfirmDelete(true)}>
              Delete ticket
            </button>
          </div>
        )}
      </div>
      {missing ? (
        <p>
          There is no ticket <code>{ticketId}</code>: it may have been deleted. Its deliveries are still in the log: <a href={`#/tickets/${ticketId}/deliveries`}>deliveries of this ticket</a>.
        </p>
      ) : !loaded ? (
        errors.form ? (
          <p class="form-error" role="alert">
            {errors.form}
          </p>
        ) : (
          <p>Loading…</p>
        )
      ) : (
        <form onSubmit={submit} noValidate>
          <FormError message={errors.form} />
          <div class="field">
            <label for="ticket-subject">Subject</label>
            <input id="ticket-subject" maxLength={250} {...input('subject')} />
            <FieldError id="subject-error" message={errors.fields.subject} />
          </div>
          <div class="field">
            <label for="ticket-description">Description</label>
            <textarea id="ticket-description" rows={4} {...input('description')} />
            <FieldError id="description-error" message={errors.fields.description} />
          </div>
          <div class="field-row">
            <div class="field">
              <label for="ticket-status">Status</label>
              <select id="ticket-status" value={draft.status} onChange={(e) => setDraft({ ...draft, status: e.currentTarget.value })}>
                {TICKET_STATUSES.map((s) => (
                  <option key={s} value={s}>
                    {s}
                  </option>
                ))}
              </select>
              <FieldError id="status-error" message={errors.fields.status} />
            </div>
            <div class="field">
              <label for="ticket-priority">Priority</label>
              <select id="ticket-priority" value={draft.priority} onChange={(e) => setDraft({ ...draft, priority: e.currentTarget.value })}>
                {TICKET_PRIORITIES.map((p) => (
                  <option key={p} value={p}>
                    {p}
                  </option>
                ))}
              </select>
            </div>
          </div>
          <div class="field">
            <label for="ticket-email">Requester email</label>
            <input id="ticket-email" type="email" {...input('requesterEmail')} />
            <FieldError id="requesterEmail-error" message={errors.fields.requesterEmail} />
          </div>
          <div class="field">
            <label for="ticket-tags">Tags</label>
            <input id="ticket-tags" {...input('tags')} aria-describedby="tags-hint" />
            <p class="hint" id="tags-hint">
              Separated by commas.
            </p>
            <FieldError id="tags-error" message={errors.fields.tags} />
          </div>
          <div class="actions">
            <a class="button" href="#/tickets">
              Cancel
            </a>
            <button type="submit" class="primary" disabled={busy}>
              {ticketId === null ? 'Create ticket' : 'Save'}
            </button>
          </div>
        </form>
      )}
      <ConfirmDialog
        open={confirmDelete}
        title="Delete this ticket?"
        message={
          <p>{`“${draft.subject}” is deleted. The webhooks that subscribe to ticket.deleted receive that event; deliveries already made stay in their logs. This cannot be undone.`}</p>
        }
        confirm="Delete ticket"
        onConfirm={remove}
        onCancel={() => setConfirmDelete(false)}
      />
    </section>
  );
}
