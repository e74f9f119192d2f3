/** Small pieces the pages share: fields with their errors, dialogs, notices, formatting. */
import type { ComponentChildren } from 'preact';
import { createContext } from 'preact';
import { useContext, useEffect, useId, useRef, useState } from 'preact/hooks';
import { ApiError, call, type ErrorDetail, type WebhookStats } from './api.js';

/** The signed-in tab: its key, and a way to call the API with it. */
export interface Session {
  key: string;
  api: <T>(method: string, path: string, body?: unknown) => Promise<T>;
  signOut: () => void;
  notify: (message: string) => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in page');
  return session;
}

export function sessionFor(key: string, signOut: () => void, notify: (message: string) => void): Session {
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

/** A modal dialog (the native one: focus stays inside, Escape closes it). */
export function Dialog(props: { title: string; open: boolean; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (props.open && !dialog.open) dialog.showModal();
    if (!props.open && dialog.open) dialog.close();
  }, [props.open]);
  return (
    <dialog ref={ref} aria-labelledby={titleId} onClose={props.onClose}>
      <h2 id={titleId}>{props.title}</h2>
      {props.children}
    </dialog>
  );
}

/** A signing secret, shown once, with a copy button. */
export function SecretDialog(props: { secret: string | null; title: string; onClose: () => void }) {
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  const inputId = useId();
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(props.secret ?? '');
      setCopied('yes');
    } catch {
      setCopied('failed');
    }
  };
  return (
    <Dialog title={props.title} open={props.secret !== null} onClose={props.onClose}>
      <p class="warning" role="note">
        This is the only time the secret is shown. Store it now in your receiver&apos;s configuration: it cannot be read again, only rotated.
      </p>
      <label for={inputId}>Signing secret</label>
      <div class="secret-row">
        <input id={inputId} readOnly value={props.secret ?? ''} onFocus={(e) => e.currentTarget.select()} />
        <button type="button" onClick={copy}>
          Copy
        </button>
      </div>
      <p aria-live="polite" class="hint">
        {copied === 'yes' ? 'Copied to the clipboard.' : copied === 'failed' ? 'The browser refused the clipboard: select the secret and copy it by hand.' : ''}
      </p>
      <div class="actions">
        <button type="button" class="primary" onClick={props.onClose}>
          I have stored it
        </button>
      </div>
    </Dialog>
  );
}

export function ConfirmDialog(props: { open: boolean; title: string; message: string; confirm: string; onConfirm: () => void; onCancel: () => void }) {
  return (
    <Dialog title={props.title} open={props.open} onClose={props.onCancel}>
      <p>{props.message}</p>
      <div class="actions">
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={props.onConfirm}>
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

/** A webhook's circuit breaker in words: whether it is paused, until when, and why. */
export function breakerText(breaker: WebhookStats['breaker'] | undefined): string {
  if (breaker === undefined) return '—';
  if (breaker === null) return 'not known here (the server runs no worker)';
  if (breaker.state === 'closed') return 'sending';
  const until = formatTime(breaker.pausedUntil);
  const why = breaker.reason ? `: ${breaker.reason}` : '';
  return breaker.state === 'open' ? `paused until ${until}${why}` : `paused, one probe out${why}`;
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

/** The latest result of a poll (null until the first) and the message of its latest failure, cleared by the next success. */
export function usePolled<T>(fetch: () => Promise<T>, everyMs: number, deps: unknown[]): { value: T | null; error: string | null } {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  usePolling(
    fetch,
    (loaded) => {
      setValue(loaded);
      setError(null);
    },
    (caught) => setError((caught as Error).message),
    everyMs,
    deps,
  );
  return { value, error };
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
