/**
 * A webhook's custom headers (docs/api.md, "Custom headers"): rows of name and value. A stored
 * header comes back from the API as its name and the mask, never its value; its row keeps the
 * name and an empty value, and is sent back with the mask (the API then keeps the stored value)
 * unless a new value is typed. A row removed is a header removed: a PUT replaces the whole set.
 */
import { ApiError, MASKED_HEADER_VALUE, MAX_HEADER_VALUE_LENGTH, MAX_HEADERS, type ErrorDetail } from './api.js';

export interface HeaderRow {
  /** Keeps a row's inputs (and their focus) with it when an earlier row is removed. */
  key: number;
  name: string;
  /** What was typed; empty on a stored row means "keep the stored value". */
  value: string;
  /** Stored on the server: its value is not known here, and its name is not editable. */
  stored: boolean;
}

let lastKey = 0;
export function headerRow(name = '', stored = false): HeaderRow {
  return { key: ++lastKey, name, value: '', stored };
}

export function rowsFromWebhook(headers: Record<string, string>): HeaderRow[] {
  return Object.keys(headers).map((name) => headerRow(name, true));
}

/** The set a request carries: the mask for a stored value left as it is. */
export function headersToSend(rows: HeaderRow[]): Record<string, string> {
  return Object.fromEntries(rows.map((row) => [row.name.trim(), row.stored && row.value === '' ? MASKED_HEADER_VALUE : row.value]));
}

/** An HTTP token (RFC 9110), as the API requires of a name. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * What the form can tell before sending, by row key. The reserved names and the characters a
 * value may hold are left to the API, whose message is shown on the row the same way.
 */
export function headerRowProblems(rows: HeaderRow[]): Map<number, string> {
  const problems = new Map<number, string>();
  const seen = new Set<string>();
  for (const row of rows) {
    const name = row.name.trim();
    const lower = name.toLowerCase();
    if (name === '') problems.set(row.key, 'the name is required');
    else if (!TOKEN.test(name)) problems.set(row.key, 'the name must be an HTTP token: letters, digits and !#$%&\'*+-.^_`|~, no spaces');
    else if (seen.has(lower)) problems.set(row.key, 'repeats a header name (names are compared without regard to case)');
    else if (!row.stored && row.value === '') problems.set(row.key, 'the value is required');
    else if (row.value.length > MAX_HEADER_VALUE_LENGTH) problems.set(row.key, `the value must be at most ${MAX_HEADER_VALUE_LENGTH} characters`);
    seen.add(lower);
  }
  return problems;
}

/** The API's details about the headers: at `webhook.headers`, or at `webhook.headers.X-Api-Key` for one header. */
export function isHeadersPath(path: string): boolean {
  return /^webhook\.headers($|\.)/.test(path);
}

/** The API's details put on their rows (by the header's name); the rest said of the set. */
export function headerProblemsFrom(details: ErrorDetail[], rows: HeaderRow[]): { byRow: Map<number, string>; set: string | null } {
  const byRow = new Map<number, string>();
  const rest: string[] = [];
  for (const { path, message } of details) {
    const tail = path.slice('webhook.headers'.length);
    const name = tail.startsWith('.') ? tail.slice(1) : null;
    const row = name === null ? undefined : rows.find((r) => r.name.trim().toLowerCase() === name!.toLowerCase());
    if (row && !byRow.has(row.key)) byRow.set(row.key, message);
    else rest.push(name ? `${name}: ${message}` : message);
  }
  return { byRow, set: rest.length > 0 ? rest.join(' ') : null };
}

/** The details of an API error that are about the headers (none for another error). */
export function headerDetails(error: unknown): ErrorDetail[] {
  return error instanceof ApiError ? error.details.filter((d) => isHeadersPath(d.path)) : [];
}

export function HeadersEditor(props: { rows: HeaderRow[]; onRows: (rows: HeaderRow[]) => void; problems: Map<number, string>; setProblem: string | null }) {
  const { rows, onRows } = props;
  const change = (key: number, part: Partial<HeaderRow>) => onRows(rows.map((row) => (row.key === key ? { ...row, ...part } : row)));
  const full = rows.length >= MAX_HEADERS;
  return (
    <fieldset class="field headers-editor" {...(props.setProblem ? { 'aria-invalid': 'true' as const, 'aria-describedby': 'headers-error' } : {})}>
      <legend>Custom headers</legend>
      <p class="hint">
        Sent with every delivery, for a receiver that wants an API key or a tenant id (at most {MAX_HEADERS}). A value is stored sealed and never shown again: a saved header shows its name only, and keeps its value
        unless you type a new one.
      </p>
      {rows.length === 0 ? (
        <p class="hint">No custom headers.</p>
      ) : (
        <ol class="header-rows">
          {rows.map((row, i) => {
            const problem = props.problems.get(row.key);
            const described = problem ? { 'aria-invalid': 'true' as const, 'aria-describedby': `header-${row.key}-error` } : {};
            return (
              <li key={row.key} class="header-row" data-header-name={row.name}>
                <div class="header-inputs">
                  <input
                    class="header-name"
                    aria-label={`Name of header ${i + 1}`}
                    placeholder="X-Api-Key"
                    spellcheck={false}
                    autocomplete="off"
                    maxLength={200}
                    value={row.name}
                    readOnly={row.stored}
                    title={row.stored ? 'A saved header keeps its name: to rename it, remove it and add a new one.' : undefined}
                    onInput={(e) => change(row.key, { name: e.currentTarget.value })}
                    {...described}
                  />
                  <input
                    class="header-value"
                    aria-label={`Value of header ${i + 1}`}
                    placeholder={row.stored ? 'stored value kept; type to replace it' : 'value'}
                    spellcheck={false}
                    autocomplete="off"
                    value={row.value}
                    onInput={(e) => change(row.key, { value: e.currentTarget.value })}
                    {...described}
                  />
                  <button type="button" aria-label={`Remove header ${i + 1}${row.name ? ` (${row.name})` : ''}`} onClick={() => onRows(rows.filter((r) => r.key !== row.key))}>
                    Remove
                  </button>
                </div>
                {problem && (
                  <p class="field-error" id={`header-${row.key}-error`}>
                    {row.name ? `${row.name}: ` : ''}
                    {problem}
                  </p>
                )}
              </li>
            );
          })}
        </ol>
      )}
      <div class="actions">
        <button type="button" disabled={full} onClick={() => onRows([...rows, headerRow()])}>
          Add header
        </button>
        {full && <span class="hint">{`That is the most a webhook may have (${MAX_HEADERS}).`}</span>}
      </div>
      {props.setProblem && (
        <p class="field-error" id="headers-error">
          {props.setProblem}
        </p>
      )}
    </fieldset>
  );
}
