/**
 * The Helpdesk admin console: a single page at /admin/ that manages webhooks, their deliveries,
 * tickets and the event feed through the public API, signed in with an admin API key (docs/console.md).
 * Routes live in the URL's hash, so that the server serves one file for all of them.
 */
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, roleOf, storedKey } from './api.js';
import { EventsPage } from './events.js';
import { TicketDeliveries } from './ticket-deliveries.js';
import { TicketForm, TicketsPage } from './tickets.js';
import { SessionContext, sessionFor, type Notice } from './ui.js';
import { UsersPage } from './users.js';
import { WebhookDetail } from './webhook-detail.js';
import { WebhookForm } from './webhook-form.js';
import { WebhooksPage } from './webhooks.js';
import './styles.css';

/** The hash's path, split (`#/webhooks/whk_1?delivery=msg_2` → `webhooks`, `whk_1`); its query is read by the page. */
const readRoute = () => window.location.hash.replace(/^#\/?/, '').split('?')[0]!.split('/').filter(Boolean);

function useHashRoute(): string[] {
  const read = readRoute;
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

function SignIn({ onSignedIn }: { onSignedIn: (key: string) => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) return setError('Enter an admin API key.');
    setBusy(true);
    setError(null);
    try {
      const role = await roleOf(trimmed);
      if (role === 'agent') setError('This is an agent key. The console manages webhooks, which needs an admin key: ask an admin for one, or use HELPDESK_ADMIN_TOKEN.');
      else onSignedIn(trimmed);
    } catch (caught) {
      setError(caught instanceof ApiError && caught.status === 401 ? 'This key is not valid: it is unknown or has been revoked.' : String((caught as Error).message));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <h1>Helpdesk admin</h1>
      <form onSubmit={submit} aria-describedby={error ? 'sign-in-error' : undefined}>
        <label for="api-key">Admin API key</label>
        <input id="api-key" type="password" autocomplete="off" spellcheck={false} value={key} onInput={(e) => setKey(e.currentTarget.value)} aria-invalid={error ? 'true' : undefined} />
        <p class="hint">Kept in this tab only (session storage) and sent as the bearer token. Closing the tab forgets it.</p>
        {error && (
          <p class="form-error" id="sign-in-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

/** A route the console does not have: said plainly, with a way back, rather than another page shown in its place. */
function NotFound() {
  return (
    <section aria-labelledby="not-found-title">
      <h1 id="not-found-title">Page not found</h1>
      <p>
        There is no page at <code>{window.location.hash || '/'}</code> in the console.
      </p>
      <p>
        <a href="#/webhooks">← Back to the webhooks</a>
      </p>
    </section>
  );
}

function Page({ route }: { route: string[] }) {
  const [section, id, action, ...more] = route;
  if (more.length > 0) return <NotFound />;
  if (section === undefined) return <WebhooksPage />;
  if (section === 'tickets') {
    if (id === undefined) return <TicketsPage />;
    // Keyed by the ticket: another ticket, or a new one, is a form of its own, not the last one's state.
    if (id === 'new' && action === undefined) return <TicketForm key="new" ticketId={null} />;
    if (action === undefined) return <TicketForm key={id} ticketId={id} />;
    if (action === 'deliveries') return <TicketDeliveries ticketId={id} />;
    return <NotFound />;
  }
  if (section === 'webhooks') {
    if (id === undefined) return <WebhooksPage />;
    // Keyed like the ticket form: editing one webhook, then asking for a new one, starts empty.
    if (id === 'new' && action === undefined) return <WebhookForm key="new" webhookId={null} />;
    if (action === 'edit') return <WebhookForm key={id} webhookId={id} />;
    if (action === undefined) return <WebhookDetail webhookId={id} />;
    return <NotFound />;
  }
  if (section === 'users' && id === undefined) return <UsersPage />;
  if (section === 'events' && id === undefined) return <EventsPage />;
  return <NotFound />;
}

/** How long a notice stays: long enough to read a sentence, short enough not to linger over the next task. */
const NOTICE_MS = 6_000;

function App() {
  const [key, setKey] = useState<string | null>(storedKey.get());
  // A notice belongs to the page it was given on (the hash's path at that moment): it is not shown
  // on another page, so it does not follow the admin around. An action that moves to another page
  // navigates first and then notifies, so its notice shows on the page it led to.
  const [notice, setNotice] = useState<(Notice & { path: string }) | null>(null);
  const route = useHashRoute();
  const signOut = () => {
    storedKey.clear();
    setKey(null);
  };
  const session = useMemo(() => (key ? sessionFor(key, signOut, (text, kind = 'ok') => setNotice({ text, kind, path: readRoute().join('/') })) : null), [key]);
  useEffect(() => {
    if (!notice) return;
    const timer = setTimeout(() => setNotice(null), NOTICE_MS);
    return () => clearTimeout(timer);
  }, [notice]);
  const path = route.join('/');
  useEffect(() => {
    if (notice && notice.path !== path) setNotice(null);
  }, [path]);
  if (!session) {
    return (
      <SignIn
        onSignedIn={(signedIn) => {
          storedKey.set(signedIn);
          setKey(signedIn);
        }}
      />
    );
  }
  const current = route[0] ?? 'webhooks';
  const link = (section: string, label: string) => (
    <a href={`#/${section}`} aria-current={current === section ? 'page' : undefined}>
      {label}
    </a>
  );
  return (
    <SessionContext.Provider value={session}>
      <header class="top">
        <a class="brand" href="#/webhooks">
          Helpdesk admin
        </a>
        <nav aria-label="Sections">
          {link('webhooks', 'Webhooks')}
          {link('tickets', 'Tickets')}
          {link('events', 'Events')}
          {link('users', 'Users and keys')}
          <a href="/docs/" target="_blank" rel="noopener">
            API reference
          </a>
        </nav>
        <button type="button" class="sign-out" onClick={signOut}>
          Sign out
        </button>
      </header>
      <div class="notice-area" role="status" aria-live="polite">
        {notice && notice.path === path && (
          <p class={`notice notice-${notice.kind}`}>
            <span>{notice.text}</span>
            <button type="button" class="dismiss" aria-label="Dismiss notice" onClick={() => setNotice(null)}>
              ×
            </button>
          </p>
        )}
      </div>
      <main>
        <Page route={route} />
      </main>
    </SessionContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
