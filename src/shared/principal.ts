/** Who may call the API: the roles, and the authenticated caller of a request. */
export const ROLES = ['admin', 'agent'] as const;

export type Role = (typeof ROLES)[number];

export interface Principal {
  readonly userId: string;
  readonly role: Role;
  /** The API key used: its id, or BOOTSTRAP_KEY_ID for HELPDESK_ADMIN_TOKEN (rate limits go by it). */
  readonly keyId: string;
}
