/**
 * The Helpdesk admin console: a single page at /admin/ that manages webhooks, their deliveries
 * and tickets through the public API, signed in with an admin API key (docs/console.md).
 * Routes live in the URL's hash, so that the server serves one file for all of them.
 */
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, roleOf, storedKey } from './api.js';
import { TicketForm, TicketsPage } from './tickets.js';
import { SessionContext, sessionFor } from './ui.js';
import { WebhookDetail } from './webhook-detail.js';
import { WebhookForm } from './webhook-form.js';
import { WebhooksPage } from './webhooks.js';
import './styles.css';

function useHashRoute(): string[] {
  const read = () => window.location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
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

function Page({ route }: { route: string[] }) {
  const [section, id, action] = route;
  if (section === 'tickets') {
    if (id === 'new') return <TicketForm ticketId={null} />;
    if (id) return <TicketForm ticketId={id} />;
    return <TicketsPage />;
  }
  if (section === 'webhooks' && id === 'new') return <WebhookForm webhookId={null} />;
  if (section === 'webhooks' && id && action === 'edit') return <WebhookForm webhookId={id} />;
  if (section === 'webhooks' && id) return <WebhookDetail webhookId={id} />;
  return <WebhooksPage />;
}

function App() {
  const [key, setKey] = useState<string | null>(storedKey.get());
  const [notice, setNotice] = useState('');
  const route = useHashRoute();
  const signOut = () => {
    storedKey.clear();
    setKey(null);
  };
  const session = useMemo(() => (key ? sessionFor(key, signOut, setNotice) : null), [key]);
  useEffect(() => {
    if (!notice) return;
    const timer = setTimeout(() => setNotice(''), 6000);
    return () => clearTimeout(timer);
  }, [notice]);
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
  const current = route[0] === 'tickets' ? 'tickets' : 'webhooks';
  return (
    <SessionContext.Provider value={session}>
      <header class="top">
        <a class="brand" href="#/webhooks">
          Helpdesk admin
        </a>
        <nav aria-label="Sections">
          <a href="#/webhooks" aria-current={current === 'webhooks' ? 'page' : undefined}>
            Webhooks
          </a>
          <a href="#/tickets" aria-current={current === 'tickets' ? 'page' : undefined}>
            Tickets
          </a>
          <a href="/docs/" target="_blank" rel="noopener">
            API reference
          </a>
        </nav>
        <button type="button" onClick={signOut}>
          Sign out
        </button>
      </header>
      <p class="notice" role="status" aria-live="polite">
        {notice}
      </p>
      <main>
        <Page route={route} />
      </main>
    </SessionContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
