/** Tickets: a list, and a form to create or edit one, so that an admin can make an event happen. */
import { useEffect, useState } from 'preact/hooks';
import { TICKET_PRIORITIES, TICKET_STATUSES, type Ticket } from './api.js';
import { ColumnHeads, errorsFrom, FieldError, FormError, formatTime, navigate, noErrors, StatusBadge, usePolled, useSession, type FormErrors } from './ui.js';

export function TicketsPage() {
  const { api } = useSession();
  const { value: tickets, error } = usePolled(async () => (await api<{ tickets: Ticket[] }>('GET', '/tickets?limit=50')).tickets, 10_000, []);
  return (
    <section aria-labelledby="tickets-title">
      <div class="title-row">
        <h1 id="tickets-title">Tickets</h1>
        <a class="button primary" href="#/tickets/new">
          New ticket
        </a>
      </div>
      {error && <p class="form-error" role="alert">{error}</p>}
      {tickets === null ? (
        <p>Loading…</p>
      ) : tickets.length === 0 ? (
        <p>No tickets yet.</p>
      ) : (
        <table>
          <caption class="visually-hidden">The 50 newest tickets</caption>
          <ColumnHeads names={['Subject', 'Status', 'Priority', 'Tags', 'Version', 'Updated']} />
          <tbody>
            {tickets.map((ticket) => (
              <tr key={ticket.id}>
                <td>
                  <a href={`#/tickets/${ticket.id}`}>{ticket.subject}</a>
                </td>
                <td>
                  <StatusBadge status={ticket.status} />
                </td>
                <td>{ticket.priority}</td>
                <td>{ticket.tags.join(', ') || '—'}</td>
                <td>{ticket.version}</td>
                <td>{formatTime(ticket.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
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

  useEffect(() => {
    if (ticketId === null) return setDraft(EMPTY);
    api<{ ticket: Ticket }>('GET', `/tickets/${ticketId}`).then(
      ({ ticket }) => {
        setDraft({ subject: ticket.subject, description: ticket.description, status: ticket.status, priority: ticket.priority, requesterEmail: ticket.requesterEmail ?? '', tags: ticket.tags.join(', ') });
        setLoaded(true);
      },
      (error: unknown) => setErrors({ fields: {}, form: (error as Error).message }),
    );
  }, [ticketId]);

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
      notify(ticketId === null ? 'Ticket created.' : 'Ticket saved.');
      navigate('tickets');
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
      <h1 id="ticket-form-title">{ticketId === null ? 'New ticket' : 'Edit ticket'}</h1>
      {!loaded ? (
        <p>{errors.form ?? 'Loading…'}</p>
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
    </section>
  );
}
