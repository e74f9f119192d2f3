import { Webhook as StandardWebhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { unknownSettingWarnings } from '../../../src/config.js';
import { UsageError } from '../../../src/cli/api-client-settings.js';
import { eventLine, listenOptions, newSigningSecret } from '../../../src/cli/listen.js';
import { signatureHeader } from '../../../src/delivery/signing.js';

describe('listen options', () => {
  it('takes the API URL for the base URL, the key from HELPDESK_API_KEY unless --api-key, and each --events type once', () => {
    const options = listenOptions({ forwardTo: 'http://localhost:3000/hook', url: 'http://127.0.0.1:9000/helpdesk/api/v1/', events: 'ticket.created, ticket.resolved,ticket.created' }, { HELPDESK_API_KEY: ' hdk_env ' });
    expect(options).toMatchObject({ serverUrl: 'http://127.0.0.1:9000', apiKey: 'hdk_env', eventTypes: ['ticket.created', 'ticket.resolved'], forwardTo: 'http://localhost:3000/hook' });
    expect(listenOptions({ forwardTo: 'https://example.test/', apiKey: 'hdk_flag' }, { HELPDESK_API_KEY: 'hdk_env' })).toMatchObject({ serverUrl: 'http://127.0.0.1:8080', apiKey: 'hdk_flag', eventTypes: [] });
  });

  it('refuses what it cannot use as a usage error (exit 2)', () => {
    const env = { HELPDESK_API_KEY: 'hdk_env' };
    for (const flags of [{}, { forwardTo: 'ws://localhost/x' }, { forwardTo: 'http://x', events: '' }, { forwardTo: 'http://x', events: 'webhook.test' }, { forwardTo: 'http://x', url: 'localhost:8080' }, { forwardTo: 'http://x', secret: 'whsec_short' }]) {
      expect(() => listenOptions(flags, env), JSON.stringify(flags)).toThrow(UsageError);
    }
    expect(() => listenOptions({ forwardTo: 'http://x' }, {})).toThrow(/needs an API key/);
  });

  it('makes a fresh secret each run that a Standard Webhooks library accepts for what listen signs', () => {
    const secret = newSigningSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(newSigningSecret()).not.toBe(secret);
    const body = '{"event":"ticket.created","timestamp":"2026-12-04T18:00:00.000Z","data":{}}';
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = { 'webhook-id': 'evt_1', 'webhook-timestamp': String(timestamp), 'webhook-signature': signatureHeader([secret], 'evt_1', timestamp, body) };
    expect(new StandardWebhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('prints the answer, or what failed, at the end of the event line', () => {
    const at = new Date(2026, 11, 4, 18, 7, 9);
    expect(eventLine(at, 'ticket.created', 'tkt_1', 'evt_1', { statusCode: 204, durationMs: 12, error: null, errorMessage: null })).toBe(
      '2026-12-04 18:07:09  ticket.created             tkt_1  evt_1  --> 204 (12 ms)',
    );
    expect(eventLine(at, 'ticket.assignment.changed', 'tkt_1', 'evt_2', { statusCode: null, durationMs: 15000, error: 'timeout', errorMessage: 'no complete answer within 15 s' })).toBe(
      '2026-12-04 18:07:09  ticket.assignment.changed  tkt_1  evt_2  --> failed: timeout, no complete answer within 15 s (15000 ms)',
    );
    expect(eventLine(at, 'ticket.updated', 'tkt_1', 'evt_3', { statusCode: 302, durationMs: 3, error: 'redirect', errorMessage: null })).toMatch(/--> 302 \(redirects are not followed\) \(3 ms\)$/);
  });

  it('does not warn about HELPDESK_API_KEY, which listen and trigger read', () => {
    expect(unknownSettingWarnings({ HELPDESK_API_KEY: 'hdk_x' })).toEqual([]);
  });
});
