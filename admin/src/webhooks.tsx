/** The webhooks table: every webhook with its health over the last 24 hours. */
import type { Webhook, WebhookStats } from './api.js';
import { Sparkline, type WebhooksActivity } from './activity-charts.js';
import { breakerText, ColumnHeads, FormError, LoadState, rateOf, StatusBadge, TargetUrl, Time, usePolled, useSession } from './ui.js';

/** The stats with the delivery-level rate (docs/api.md, `GET /webhooks/:id/stats`). */
export type Stats = WebhookStats & { deliverySuccessRate: number | null };

interface Row {
  webhook: Webhook;
  stats: Stats | null;
  activity: WebhooksActivity['webhooks'][number] | null;
}

const COLUMNS = ['Name', 'Target', 'Events', 'Active', 'Breaker', 'Deliveries (24 h)', 'Attempts (24 h)', 'Activity (24 h)', 'Last delivery'];

/**
 * Deliveries and attempts apart: a webhook whose every delivery succeeded on its first retry
 * delivered everything (100 % of deliveries) while half its attempts failed (50 %); one figure
 * alone would call it either healthy or broken.
 */
export function deliveriesText(stats: Stats): string {
  const { succeeded, failed, pending } = stats.deliveries;
  const text = rateOf(stats.deliverySuccessRate, succeeded + failed, 'finished delivery', 'finished deliveries');
  return pending > 0 ? `${text}, ${pending} pending` : text;
}

export function attemptsText(stats: Stats): string {
  return rateOf(stats.successRate, stats.attempts.total, 'attempt', 'attempts');
}

export function WebhooksPage() {
  const { api } = useSession();
  const { value: rows, error, retry } = usePolled(
    async (): Promise<Row[]> => {
      const { webhooks } = await api<{ webhooks: Webhook[] }>('GET', '/webhooks?limit=100');
      const stats = await Promise.all(webhooks.map((w) => api<{ stats: Stats }>('GET', `/webhooks/${w.id}/stats`).then((r) => r.stats, () => null)));
      // Every row's sparkline from one request (docs/api.md, `GET /webhooks/activity`).
      const activity =
        webhooks.length === 0
          ? null
          : await api<{ activity: WebhooksActivity }>('GET', `/webhooks/activity?ids=${webhooks.map((w) => w.id).join(',')}`).then(
              (r) => r.activity,
              () => null,
            );
      const byWebhook = new Map(activity?.webhooks.map((a) => [a.webhookId, a]));
      return webhooks.map((webhook, i) => ({ webhook, stats: stats[i] ?? null, activity: byWebhook.get(webhook.id) ?? null }));
    },
    10_000,
    [],
  );

  return (
    <section aria-labelledby="webhooks-title">
      <div class="title-row">
        <h1 id="webhooks-title">Webhooks</h1>
        <a class="button primary" href="#/webhooks/new">
          New webhook
        </a>
      </div>
      {rows === null ? (
        <LoadState error={error} retry={retry} />
      ) : (
        <>
          <FormError message={error} />
          {rows.length === 0 ? (
            <p>No webhooks yet. Create one to send ticket events to an HTTPS endpoint.</p>
          ) : (
            <table class="stack">
              <caption class="visually-hidden">Webhooks, newest first, with their deliveries and attempts over the last 24 hours</caption>
              <ColumnHeads names={COLUMNS} />
              <tbody>
                {rows.map(({ webhook, stats, activity }) => (
                  <tr key={webhook.id}>
                    <td data-label="Name" class="title-cell">
                      <a href={`#/webhooks/${webhook.id}`}>{webhook.name}</a>
                    </td>
                    <td data-label="Target" class="url">
                      <TargetUrl url={webhook.targetUrl} />
                    </td>
                    <td data-label="Events">
                      {webhook.events.join(', ')}
                      {webhook.filter !== null && (
                        <span class="marker" title="Only the events its filter matches are sent">
                          filtered
                        </span>
                      )}
                      {webhook.rateLimit !== null && (
                        <span class="marker" title={`At most ${webhook.rateLimit} deliveries a second`}>
                          {`${webhook.rateLimit}/s`}
                        </span>
                      )}
                    </td>
                    <td data-label="Active">{webhook.active ? 'yes' : `no${webhook.disabledReason ? ` (${webhook.disabledReason})` : ''}`}</td>
                    <td data-label="Breaker">{breakerText(stats?.breaker)}</td>
                    <td data-label="Deliveries (24 h)" class="deliveries-rate">
                      {stats ? deliveriesText(stats) : '—'}
                    </td>
                    <td data-label="Attempts (24 h)" class="attempts-rate">
                      {stats ? attemptsText(stats) : '—'}
                    </td>
                    <td data-label="Activity (24 h)" class="activity-cell">
                      {activity ? <Sparkline activity={activity} /> : '—'}
                    </td>
                    <td data-label="Last delivery">
                      {stats?.lastDelivery ? (
                        <>
                          <StatusBadge status={stats.lastDelivery.status} /> <Time iso={stats.lastDelivery.lastAttemptAt} />
                        </>
                      ) : (
                        '—'
                      )}
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
