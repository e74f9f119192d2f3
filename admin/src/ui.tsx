/** Small pieces the pages share: fields with their errors, dialogs, notices, formatting. */
import type { ComponentChildren } from 'preact';
import { createContext } from 'preact';
import { useContext, useEffect, useId, useRef, useState } from 'preact/hooks';
import { API_BASE, ApiError, call, type ErrorDetail, type WebhookStats } from './api.js';

/** A message about what the last action did: `error` when it failed. */
export interface Notice {
  text: string;
  kind: 'ok' | 'error';
}

/** The signed-in tab: its key, and a way to call the API with it. */
export interface Session {
  key: string;
  api: <T>(method: string, path: string, body?: unknown) => Promise<T>;
  signOut: () => void;
  notify: (message: string, kind?: Notice['kind']) => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in page');
  return session;
}

export function sessionFor(key: string, signOut: () => void, notify: Session['notify']): Session {
  return {
    key,
    signOut,
    notify,
    api: async <T,>(method: string, path: string, body?: unknown) => {
      try {
        return await call<T>(key, method, path, body);
      } catch (error) {
        // A key revoked while the tab was open: back to the sign-in page.
        if (error instanceof ApiError && error.status === 401) signOut();
        throw error;
      }
    },
  };
}

/**
 * The hash's query (`#/webhooks/whk_1?delivery=msg_2`, `#/events?ticketId=tkt_1`): how another
 * page points at one delivery, or opens a list already filtered.
 */
export function hashQuery(): URLSearchParams {
  const at = window.location.hash.indexOf('?');
  return new URLSearchParams(at === -1 ? '' : window.location.hash.slice(at + 1));
}

export function navigate(path: string): void {
  window.location.hash = `#/${path}`;
}

/** The errors of a refused form: by field (from the API's `details`), and the rest. */
export interface FormErrors {
  fields: Record<string, string>;
  form: string | null;
}

export const noErrors: FormErrors = { fields: {}, form: null };

/** `webhook.events.0` under `webhook` → `events`. */
export function errorsFrom(error: unknown, resource: string): FormErrors {
  if (!(error instanceof ApiError)) return { fields: {}, form: String(error) };
  const fields: Record<string, string> = {};
  const rest: ErrorDetail[] = [];
  for (const detail of error.details) {
    const [head, field] = detail.path.split('.');
    if (head === resource && field) fields[field] ??= detail.message;
    else rest.push(detail);
  }
  const form = Object.keys(fields).length > 0 && rest.length === 0 ? null : [error.message, ...rest.map((d) => `${d.path} ${d.message}`)].join(' ');
  return { fields, form };
}

export function FieldError({ id, message }: { id: string; message: string | undefined }) {
  if (!message) return null;
  return (
    <p class="field-error" id={id}>
      {message}
    </p>
  );
}

export function FormError({ message }: { message: string | null }) {
  if (!message) return null;
  return (
    <p class="form-error" role="alert">
      {message}
    </p>
  );
}

/**
 * A modal dialog (the native one: focus stays inside, Escape closes it). One that is not
 * `dismissible` ignores Escape: it shows what cannot be shown again, and only its own button
 * closes it. Chromium lets a second Escape close a dialog even when the first one's cancel was
 * refused (a guard against pages that trap the user), so Escape is refused at its keydown, and
 * a close that was not asked for all the same opens the dialog again.
 */
export function Dialog(props: { title: string; open: boolean; onClose: () => void; dismissible?: boolean; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const dismissible = props.dismissible ?? true;
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (props.open && !dialog.open) dialog.showModal();
    if (!props.open && dialog.open) dialog.close();
  }, [props.open]);
  return (
    <dialog
      ref={ref}
      aria-labelledby={titleId}
      onKeyDown={(event) => {
        // Escape's default action is the close request; refused here, no cancel event is even sent.
        if (!dismissible && event.key === 'Escape') event.preventDefault();
      }}
      onCancel={(event) => {
        if (!dismissible) event.preventDefault();
      }}
      onClose={() => {
        if (dismissible || !props.open) props.onClose();
        else ref.current?.showModal();
      }}
    >
      <h2 id={titleId}>{props.title}</h2>
      {props.children}
    </dialog>
  );
}

/**
 * A secret shown once (a webhook's signing secret, a new API key), with a copy button. Escape does
 * not close it: only "I have copied it" does, so that it is not lost by a stray key press.
 */
export function ShownOnceDialog(props: { value: string | null; title: string; label: string; warning: string; onClose: () => void }) {
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  const inputId = useId();
  useEffect(() => setCopied(null), [props.value]);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.value ?? '');
      setCopied('yes');
    } catch {
      setCopied('failed');
    }
  };
  return (
    <Dialog title={props.title} open={props.value !== null} onClose={props.onClose} dismissible={false}>
      <p class="warning" role="note">
        {props.warning}
      </p>
      <label for={inputId}>{props.label}</label>
      <div class="secret-row">
        <input id={inputId} readOnly value={props.value ?? ''} onFocus={(e) => e.currentTarget.select()} />
        <button type="button" onClick={copy}>
          Copy
        </button>
      </div>
      <p aria-live="polite" class="hint">
        {copied === 'yes' ? 'Copied to the clipboard.' : copied === 'failed' ? 'The browser refused the clipboard: select it and copy it by hand.' : ''}
      </p>
      <div class="actions">
        <button type="button" class="primary" onClick={props.onClose}>
          I have copied it
        </button>
      </div>
    </Dialog>
  );
}

/** A signing secret, shown once. */
export function SecretDialog(props: { secret: string | null; title: string; onClose: () => void }) {
  return (
    <ShownOnceDialog
      title={props.title}
      value={props.secret}
      label="Signing secret"
      warning="This is the only time the secret is shown. Store it now in your receiver's configuration: it cannot be read again, only rotated."
      onClose={props.onClose}
    />
  );
}

/** Asks before an action that cannot be taken back, saying what it will do. */
export function ConfirmDialog(props: { open: boolean; title: string; message: ComponentChildren; confirm: string; tone?: 'danger' | 'primary'; onConfirm: () => void; onCancel: () => void }) {
  return (
    <Dialog title={props.title} open={props.open} onClose={props.onCancel}>
      <div class="dialog-message">{props.message}</div>
      <div class="actions">
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
        <button type="button" class={props.tone ?? 'danger'} onClick={props.onConfirm}>
          {props.confirm}
        </button>
      </div>
    </Dialog>
  );
}

export function formatTime(iso: string | null): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

const RELATIVE_UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
  ['second', 1_000],
];
const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto', style: 'short' });

/** "3 min ago", "in 5 sec": the largest unit that fits, from now. */
export function relativeTime(iso: string, now = Date.now()): string {
  const delta = Date.parse(iso) - now;
  if (Math.abs(delta) < 1_000) return 'now';
  for (const [unit, ms] of RELATIVE_UNITS) {
    if (Math.abs(delta) >= ms || unit === 'second') return relative.format(Math.trunc(delta / ms), unit);
  }
  return 'now';
}

/**
 * A time as people read it in a list ("3 min ago"), with the exact time in its title and
 * `datetime`. It is as fresh as the last render: the pages that show it refresh every few seconds.
 */
export function Time({ iso }: { iso: string | null }) {
  if (!iso) return <>—</>;
  return (
    <time dateTime={iso} title={formatTime(iso)}>
      {relativeTime(iso)}
    </time>
  );
}

/**
 * A target URL that breaks only after its origin: the scheme and host stay whole on one line (a
 * host cut in two reads as two hosts), and the path may break anywhere.
 */
export function TargetUrl({ url }: { url: string }) {
  let origin = url;
  let rest = '';
  try {
    const parsed = new URL(url);
    origin = parsed.origin;
    rest = url.slice(url.indexOf(parsed.host) + parsed.host.length);
  } catch {
    // Not a URL (the API would not have stored it): shown as it is.
  }
  return (
    <span class="target-url">
      <span class="url-origin">{origin}</span>
      {rest && (
        <>
          <wbr />
          <span class="url-rest">{rest}</span>
        </>
      )}
    </span>
  );
}

/** A webhook's circuit breaker in words: whether it is paused, until when, and why. */
export function breakerText(breaker: WebhookStats['breaker'] | undefined): string {
  if (breaker === undefined) return '—';
  if (breaker === null) return 'not known here (the server runs no worker)';
  if (breaker.state === 'closed') return 'sending';
  const until = formatTime(breaker.pausedUntil);
  const why = breaker.reason ? `: ${breaker.reason}` : '';
  return breaker.state === 'open' ? `paused until ${until}${why}` : `paused, one probe out${why}`;
}

/** A rate with what it is a rate of: `100 % of 3 deliveries`, or `—` with none. */
export function rateOf(rate: number | null, total: number, one: string, many: string): string {
  return rate === null || total === 0 ? `— (no ${many})` : `${formatRate(rate)} of ${total} ${total === 1 ? one : many}`;
}

export function formatRate(rate: number | null): string {
  return rate === null ? '—' : `${(rate * 100).toFixed(rate === 1 || rate === 0 ? 0 : 1)} %`;
}

/** A `datetime-local` value (the browser's local time) as an ISO 8601 UTC instant. */
export function localInputToIso(value: string): string | null {
  if (!value) return null;
  const time = new Date(value);
  return Number.isNaN(time.getTime()) ? null : time.toISOString();
}

/** An ISO instant as a `datetime-local` value. */
export function isoToLocalInput(iso: string): string {
  const time = new Date(iso);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${time.getFullYear()}-${pad(time.getMonth() + 1)}-${pad(time.getDate())}T${pad(time.getHours())}:${pad(time.getMinutes())}`;
}

/**
 * Fetches now and every `everyMs` while the page is open, and hands each result to `show`, or
 * its failure to `failed`; when `deps` change (a new filter, say) it starts over. A response to
 * an earlier round that arrives after the restart is dropped: out of order, it would show the
 * list of the old filter under the new one.
 */
export function usePolling<T>(fetch: () => Promise<T>, show: (value: T) => void, failed: (error: unknown) => void, everyMs: number, deps: unknown[]): void {
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const value = await fetch();
        if (!stopped) show(value);
      } catch (error) {
        if (!stopped) failed(error);
      }
      if (!stopped) timer = setTimeout(tick, everyMs);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
    // The caller names what restarts it.
  }, deps);
}

/**
 * The latest result of a poll (null until the first) and the message of its latest failure,
 * cleared by the next success; `status` is the failure's HTTP status (0: no answer). `retry`
 * polls again at once.
 */
export function usePolled<T>(fetch: () => Promise<T>, everyMs: number, deps: unknown[]): { value: T | null; error: string | null; status: number | null; retry: () => void } {
  const [value, setValue] = useState<T | null>(null);
  const [failure, setFailure] = useState<{ message: string; status: number } | null>(null);
  const [round, setRound] = useState(0);
  usePolling(
    fetch,
    (loaded) => {
      setValue(loaded);
      setFailure(null);
    },
    (caught) => setFailure({ message: (caught as Error).message, status: caught instanceof ApiError ? caught.status : -1 }),
    everyMs,
    [...deps, round],
  );
  return { value, error: failure?.message ?? null, status: failure?.status ?? null, retry: () => setRound((n) => n + 1) };
}

/**
 * What a page shows before its data: "Loading…" while the first answer is awaited, or the failure
 * alone with a way to try again (never both: a page that says it is loading while it says the
 * server is down tells nothing).
 */
export function LoadState({ error, retry }: { error: string | null; retry: () => void }) {
  if (!error) return <p class="loading">Loading…</p>;
  return (
    <div class="load-failed">
      <p class="form-error" role="alert">
        {error}
      </p>
      <button type="button" onClick={retry}>
        Retry
      </button>
    </div>
  );
}

/**
 * The version of the server, from its OpenAPI document (open to all, asked once per page load):
 * deliveries go out with `user-agent: Helpdesk-Webhooks/<version>`.
 */
let serverVersion: Promise<string | null> | null = null;
export function fetchServerVersion(): Promise<string | null> {
  serverVersion ??= fetch(`${API_BASE}/openapi.json`)
    .then((response) => (response.ok ? (response.json() as Promise<{ info?: { version?: string } }>) : null))
    .then((document) => document?.info?.version ?? null)
    .catch(() => null);
  return serverVersion;
}

export function useServerVersion(): string | null {
  const [version, setVersion] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    void fetchServerVersion().then((found) => live && setVersion(found));
    return () => {
      live = false;
    };
  }, []);
  return version;
}

/** A table's header row; the columns in `hidden` are named for screen readers only. */
export function ColumnHeads({ names, hidden = [] }: { names: string[]; hidden?: string[] }) {
  return (
    <thead>
      <tr>
        {names.map((name) => (
          <th scope="col" key={name}>
            {hidden.includes(name) ? <span class="visually-hidden">{name}</span> : name}
          </th>
        ))}
      </tr>
    </thead>
  );
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge badge-${status}`}>{status}</span>;
}
