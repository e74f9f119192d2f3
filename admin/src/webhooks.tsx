/** The webhooks table: every webhook with its health over the last 24 hours. */
import type { Webhook, WebhookStats } from './api.js';
import { breakerText, ColumnHeads, formatRate, formatTime, StatusBadge, usePolled, useSession } from './ui.js';

interface Row {
  webhook: Webhook;
  stats: WebhookStats | null;
}

export function WebhooksPage() {
  const { api } = useSession();
  const { value: rows, error } = usePolled(
    async (): Promise<Row[]> => {
      const { webhooks } = await api<{ webhooks: Webhook[] }>('GET', '/webhooks?limit=100');
      const stats = await Promise.all(webhooks.map((w) => api<{ stats: WebhookStats }>('GET', `/webhooks/${w.id}/stats`).then((r) => r.stats, () => null)));
      return webhooks.map((webhook, i) => ({ webhook, stats: stats[i] ?? null }));
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
      {error && <p class="form-error" role="alert">{error}</p>}
      {rows === null ? (
        <p>Loading…</p>
      ) : rows.length === 0 ? (
        <p>No webhooks yet. Create one to send ticket events to an HTTPS endpoint.</p>
      ) : (
        <table>
          <caption class="visually-hidden">Webhooks, newest first, with their success rate over the last 24 hours</caption>
          <ColumnHeads names={['Name', 'Target', 'Events', 'Active', 'Disabled reason', 'Breaker', 'Success (24 h)', 'Last delivery']} />
          <tbody>
            {rows.map(({ webhook, stats }) => (
              <tr key={webhook.id}>
                <td>
                  <a href={`#/webhooks/${webhook.id}`}>{webhook.name}</a>
                </td>
                <td class="url">{webhook.targetUrl}</td>
                <td>{webhook.events.join(', ')}</td>
                <td>{webhook.active ? 'yes' : 'no'}</td>
                <td>{webhook.disabledReason ?? '—'}</td>
                <td>{breakerText(stats?.breaker)}</td>
                <td>
                  {formatRate(stats?.successRate ?? null)}
                  {stats && stats.attempts.total > 0 && <span class="hint"> of {stats.attempts.total} attempts</span>}
                </td>
                <td>
                  {stats?.lastDelivery ? (
                    <>
                      <StatusBadge status={stats.lastDelivery.status} /> {formatTime(stats.lastDelivery.lastAttemptAt)}
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
    </section>
  );
}
