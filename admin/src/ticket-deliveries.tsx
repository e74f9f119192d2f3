/**
 * A ticket's deliveries across every webhook, newest first: what a Stripe user finds under an
 * object's "Events and logs", the answer to "did my receivers get this ticket's changes?" without
 * knowing which webhooks subscribe. The API lists deliveries per webhook (with a `ticketId`
 * filter), so the page asks each webhook and merges the answers (docs/console.md, "A ticket's
 * deliveries").
 */
import type { Webhook } from './api.js';
import { ColumnHeads, FormError, LoadState, StatusBadge, Time, usePolled, useSession } from './ui.js';
import { LastAnswer, LIST_INCLUDES, type ListedDelivery } from './webhook-detail.js';

const REFRESH_MS = 5_000;
/** Per webhook; the merged list shows the newest of them all. */
const PER_WEBHOOK = 50;

interface Row {
  delivery: ListedDelivery;
  webhook: Webhook;
}

export function TicketDeliveries({ ticketId }: { ticketId: string }) {
  const { api } = useSession();
  const { value: rows, error, retry } = usePolled(
    async (): Promise<Row[]> => {
      const { webhooks } = await api<{ webhooks: Webhook[] }>('GET', '/webhooks?limit=100');
      const query = new URLSearchParams({ ticketId, include: LIST_INCLUDES, limit: String(PER_WEBHOOK) });
      const lists = await Promise.all(webhooks.map((webhook) => api<{ deliveries: ListedDelivery[] }>('GET', `/webhooks/${webhook.id}/deliveries?${query}`).then((r) => r.deliveries.map((delivery) => ({ delivery, webhook })))));
      return lists.flat().sort((a, b) => (a.delivery.createdAt === b.delivery.createdAt ? b.delivery.id.localeCompare(a.delivery.id) : b.delivery.createdAt.localeCompare(a.delivery.createdAt)));
    },
    REFRESH_MS,
    [ticketId],
  );
  return (
    <section aria-labelledby="ticket-deliveries-title">
      <p>
        <a href={`#/tickets/${ticketId}`}>← Ticket</a> · <a href="#/tickets">Tickets</a>
      </p>
      <h1 id="ticket-deliveries-title">Deliveries of ticket</h1>
      <p class="hint">
        <code>{ticketId}</code>: every webhook's deliveries of this ticket's events, newest first (up to {PER_WEBHOOK} per webhook).
      </p>
      {rows === null ? (
        <LoadState error={error} retry={retry} />
      ) : (
        <>
          <FormError message={error} />
          {rows.length === 0 ? (
            <p>No delivery of this ticket: no webhook subscribed to its events, or they were pruned.</p>
          ) : (
            <table class="stack">
              <caption class="visually-hidden">Deliveries of ticket {ticketId}, newest first</caption>
              <ColumnHeads names={['Created', 'Webhook', 'Event', 'Version', 'Status', 'Attempts', 'Last answer', 'Webhook-id']} />
              <tbody>
                {rows.map(({ delivery, webhook }) => (
                  <tr key={delivery.id} data-delivery-id={delivery.id}>
                    <td data-label="Created">
                      <Time iso={delivery.createdAt} />
                    </td>
                    <td data-label="Webhook" class="title-cell">
                      <a href={`#/webhooks/${webhook.id}`}>{webhook.name}</a>
                    </td>
                    <td data-label="Event">{delivery.event}</td>
                    <td data-label="Version">{delivery.ticketVersion ?? '—'}</td>
                    <td data-label="Status">
                      <StatusBadge status={delivery.status} />
                    </td>
                    <td data-label="Attempts">{delivery.attemptCount}</td>
                    <td data-label="Last answer">
                      <LastAnswer delivery={delivery} />
                    </td>
                    <td data-label="Webhook-id" class="delivery-id">
                      <a href={`#/webhooks/${webhook.id}?delivery=${delivery.id}`} title="Open in its webhook's log">
                        <code>{delivery.id}</code>
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
