/**
 * Users and API keys (docs/api.md, "Users" and "API keys"): list both, create a user, create a
 * key for a user (the key is shown once, like a signing secret) and revoke a key, after a
 * confirmation. The API has no update or delete of users, so neither has the console.
 */
import { useState } from 'preact/hooks';
import type { Role, Schemas } from './api.js';
import { ColumnHeads, ConfirmDialog, errorsFrom, FieldError, FormError, LoadState, noErrors, ShownOnceDialog, Time, usePolled, useSession, type FormErrors } from './ui.js';

/** docs/api.md, "Users" and "API keys", as the OpenAPI document describes them (api.ts). */
export type User = Schemas['User'];
/** `key` only in the answer to the creation (NewApiKey). */
export type ApiKey = Schemas['ApiKey'] & Partial<Pick<Schemas['NewApiKey'], 'key'>>;

const ROLES: Role[] = ['agent', 'admin'];

export function UsersPage() {
  const { api, notify } = useSession();
  const [round, setRound] = useState(0);
  const { value, error, retry } = usePolled(
    async () => {
      const [{ users }, { apiKeys }] = await Promise.all([api<{ users: User[] }>('GET', '/users?limit=100'), api<{ apiKeys: ApiKey[] }>('GET', '/api-keys?limit=100')]);
      return { users, apiKeys };
    },
    10_000,
    [round],
  );
  const reload = () => setRound((n) => n + 1);
  const [newKey, setNewKey] = useState<string | null>(null);
  const [revoking, setRevoking] = useState<ApiKey | null>(null);
  const [revokeError, setRevokeError] = useState<string | null>(null);

  const revoke = async () => {
    const key = revoking;
    setRevoking(null);
    if (!key) return;
    try {
      await api('DELETE', `/api-keys/${key.id}`);
      setRevokeError(null);
      notify(`Key “${key.name}” revoked: requests with it are refused from now on.`);
      reload();
    } catch (caught) {
      setRevokeError((caught as Error).message);
    }
  };

  return (
    <section aria-labelledby="users-title">
      <h1 id="users-title">Users and API keys</h1>
      {value === null ? (
        <LoadState error={error} retry={retry} />
      ) : (
        <>
          <FormError message={error} />
          <h2>Users</h2>
          <table class="stack">
            <caption class="visually-hidden">Users, newest first</caption>
            <ColumnHeads names={['Name', 'Email', 'Role', 'Keys', 'Created']} />
            <tbody>
              {value.users.map((user) => (
                <tr key={user.id} data-user-id={user.id}>
                  <td data-label="Name" class="title-cell">
                    {user.name}
                  </td>
                  <td data-label="Email" class="wrap-anywhere">
                    {user.email}
                  </td>
                  <td data-label="Role">{user.role}</td>
                  <td data-label="Keys">{value.apiKeys.filter((k) => k.userId === user.id).length}</td>
                  <td data-label="Created">
                    <Time iso={user.createdAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <NewUserForm
            onCreated={(user) => {
              notify(`User ${user.name} created. Create a key for them below.`);
              reload();
            }}
          />

          <h2>API keys</h2>
          <p class="hint">Only a hash of each key is kept: a key is shown once, when it is created. A key revoked here is refused on its next request.</p>
          <FormError message={revokeError} />
          {value.apiKeys.length === 0 ? (
            <p>No API keys. (The <code>HELPDESK_ADMIN_TOKEN</code> is not one: it lives in the server's environment.)</p>
          ) : (
            <table class="stack">
              <caption class="visually-hidden">API keys, newest first</caption>
              <ColumnHeads names={['Name', 'User', 'Id', 'Created', 'Actions']} hidden={['Actions']} />
              <tbody>
                {value.apiKeys.map((key) => {
                  const user = value.users.find((u) => u.id === key.userId);
                  return (
                    <tr key={key.id} data-key-id={key.id}>
                      <td data-label="Name" class="title-cell">
                        {key.name}
                      </td>
                      <td data-label="User">{user ? `${user.name} (${user.role})` : key.userId}</td>
                      <td data-label="Id">
                        <code>{key.id}</code>
                      </td>
                      <td data-label="Created">
                        <Time iso={key.createdAt} />
                      </td>
                      <td class="row-actions">
                        <button type="button" class="danger" onClick={() => setRevoking(key)}>
                          Revoke
                        </button>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          )}
          <NewKeyForm
            users={value.users}
            onCreated={(key) => {
              setNewKey(key.key ?? null);
              reload();
            }}
          />
        </>
      )}
      <ConfirmDialog
        open={revoking !== null}
        title="Revoke this API key?"
        message={<p>{`“${revoking?.name ?? ''}” stops working at once: every request made with it is refused (401) from now on, this console's too if it is signed in with it. This cannot be undone; a new key can be created instead.`}</p>}
        confirm="Revoke key"
        onConfirm={() => void revoke()}
        onCancel={() => setRevoking(null)}
      />
      <ShownOnceDialog
        title="API key created"
        value={newKey}
        label="API key"
        warning="This is the only time the key is shown: only its hash is kept. Give it to its user now; it is sent as Authorization: Bearer <key>."
        onClose={() => setNewKey(null)}
      />
    </section>
  );
}

function NewUserForm({ onCreated }: { onCreated: (user: User) => void }) {
  const { api } = useSession();
  const [draft, setDraft] = useState({ name: '', email: '', role: 'agent' as Role });
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    const name = draft.name.trim();
    const email = draft.email.trim();
    // What the API checks first (docs/api.md, "Users"); the rest (a taken email) it answers.
    const fields: Record<string, string> = {};
    if (name.length === 0) fields.name = 'is required';
    if (email.length === 0) fields.email = 'is required';
    if (Object.keys(fields).length > 0) return setErrors({ fields, form: null });
    setBusy(true);
    setErrors(noErrors);
    try {
      const { user } = await api<{ user: User }>('POST', '/users', { user: { name, email, role: draft.role } });
      setDraft({ name: '', email: '', role: 'agent' });
      onCreated(user);
    } catch (caught) {
      setErrors(errorsFrom(caught, 'user'));
    } finally {
      setBusy(false);
    }
  };
  const invalid = (field: string) => (errors.fields[field] ? { 'aria-invalid': 'true' as const, 'aria-describedby': `user-${field}-error` } : {});
  return (
    <details class="tool">
      <summary>New user</summary>
      <form onSubmit={submit} noValidate aria-label="New user">
        <FormError message={errors.form} />
        <div class="field-row">
          <div class="field">
            <label for="user-name">Name</label>
            <input id="user-name" maxLength={200} value={draft.name} onInput={(e) => setDraft({ ...draft, name: e.currentTarget.value })} {...invalid('name')} />
            <FieldError id="user-name-error" message={errors.fields.name} />
          </div>
          <div class="field">
            <label for="user-email">Email</label>
            <input id="user-email" type="email" maxLength={254} value={draft.email} onInput={(e) => setDraft({ ...draft, email: e.currentTarget.value })} {...invalid('email')} />
            <FieldError id="user-email-error" message={errors.fields.email} />
          </div>
          <div class="field">
            <label for="user-role">Role</label>
            <select id="user-role" value={draft.role} onChange={(e) => setDraft({ ...draft, role: e.currentTarget.value as Role })}>
              {ROLES.map((role) => (
                <option key={role} value={role}>
                  {role}
                </option>
              ))}
            </select>
          </div>
        </div>
        <button type="submit" class="primary" disabled={busy}>
          Create user
        </button>
      </form>
    </details>
  );
}

function NewKeyForm({ users, onCreated }: { users: User[]; onCreated: (key: ApiKey) => void }) {
  const { api } = useSession();
  const [draft, setDraft] = useState({ name: '', userId: '' });
  const [errors, setErrors] = useState<FormErrors>(noErrors);
  const [busy, setBusy] = useState(false);
  const userId = draft.userId || users[0]?.id || '';
  const submit = async (event: Event) => {
    event.preventDefault();
    const name = draft.name.trim();
    if (name.length === 0) return setErrors({ fields: { name: 'is required' }, form: null });
    setBusy(true);
    setErrors(noErrors);
    try {
      const { apiKey } = await api<{ apiKey: ApiKey }>('POST', '/api-keys', { apiKey: { name, userId } });
      setDraft({ name: '', userId });
      onCreated(apiKey);
    } catch (caught) {
      setErrors(errorsFrom(caught, 'apiKey'));
    } finally {
      setBusy(false);
    }
  };
  return (
    <details class="tool">
      <summary>New API key</summary>
      <form onSubmit={submit} noValidate aria-label="New API key">
        <FormError message={errors.form} />
        <div class="field-row">
          <div class="field">
            <label for="key-name">Key name</label>
            <input
              id="key-name"
              maxLength={200}
              placeholder="ada laptop"
              value={draft.name}
              onInput={(e) => setDraft({ ...draft, name: e.currentTarget.value })}
              {...(errors.fields.name ? { 'aria-invalid': 'true' as const, 'aria-describedby': 'key-name-error' } : {})}
            />
            <FieldError id="key-name-error" message={errors.fields.name} />
          </div>
          <div class="field">
            <label for="key-user">For user</label>
            <select id="key-user" value={userId} onChange={(e) => setDraft({ ...draft, userId: e.currentTarget.value })}>
              {users.map((user) => (
                <option key={user.id} value={user.id}>
                  {`${user.name} (${user.role})`}
                </option>
              ))}
            </select>
            <FieldError id="key-userId-error" message={errors.fields.userId} />
          </div>
        </div>
        <button type="submit" class="primary" disabled={busy || users.length === 0}>
          Create key
        </button>
      </form>
    </details>
  );
}
