/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// (page.evaluate callbacks run in the browser.)
/**
 * The admin console in a real browser: Debian's Chromium, headless, driven by playwright-core,
 * against a Helpdesk server listening on a real socket and a real HTTPS receiver. The story of
 * issue 6: sign in (an agent key refused, clearly), create a webhook (the form's error next to
 * its field first), copy the secret shown once, create a ticket, see the delivery succeed, make
 * the receiver fail, read its answer in the failed attempt, fix it, redeliver, see success.
 *
 * With HELPDESK_SCREENSHOTS=1 (`npm run screenshots`) it also saves the main screens under
 * docs/images/ for the README. Skipped, saying so, where /usr/bin/chromium is not installed
 * (`.ci/run` installs it).
 */
import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { insertPastAttempts } from '../helpers/attempts.js';
import { seededRandom } from '../helpers/random.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ADMIN_TOKEN, startTestServer, type TestServer } from '../helpers/server.js';
import { openSse } from '../helpers/sse.js';

const CHROMIUM = '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
// In CI (.ci/run) a missing browser is a failure, not a skip.
if (!available && process.env.HELPDESK_TEST_REQUIRE_CHROMIUM === 'true') throw new Error(`${CHROMIUM} is required (HELPDESK_TEST_REQUIRE_CHROMIUM=true) but not installed`);
const SCREENSHOTS = process.env.HELPDESK_SCREENSHOTS === '1' ? new URL('../../docs/images/', import.meta.url) : null;
/** The console refreshes deliveries every 2 s; a state change must show within a few refreshes. */
const SHOWS_WITHIN_MS = 15_000;

describe.skipIf(!available)(`admin console in Chromium${available ? '' : `: SKIPPED, ${CHROMIUM} not installed (apt-get install -y chromium)`}`, () => {
  let server: TestServer;
  let receiver: Receiver;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let origin: string;

  beforeAll(async () => {
    server = await startTestServer('sqlite');
    await server.runtime.app.listen({ port: 0, host: '127.0.0.1' });
    origin = `http://127.0.0.1:${(server.runtime.app.server.address() as AddressInfo).port}`;
    receiver = await startReceiver();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    if (SCREENSHOTS) mkdirSync(SCREENSHOTS, { recursive: true });
  }, 60_000);
  beforeEach(async () => {
    // A tab of its own for each test: its session storage starts empty.
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
    page = await context.newPage();
    // Anything the page asks of another origin would be a CDN or a tracker: there must be none.
    await page.route((url) => url.origin !== origin, (route) => route.abort());
  });
  afterEach(async () => {
    await context.close();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await receiver?.close();
  });

  /** A link of the header's navigation. */
  const nav = (name: string) => page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name, exact: true });

  async function signIn(): Promise<void> {
    await page.goto(`${origin}/admin/`);
    await page.getByLabel('Admin API key').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
  }

  /** Opens one of the folded tools of a delivery list ("Filters", "Recover failed deliveries"). */
  async function unfold(summary: string): Promise<void> {
    const details = page.locator('details', { has: page.locator('summary', { hasText: summary }) });
    if (!(await details.evaluate((element) => (element as HTMLDetailsElement).open))) await details.locator('summary').click();
  }

  /** The page is no wider than the window: nothing runs past its right edge. */
  const pageWidth = () => page.evaluate(() => document.documentElement.scrollWidth);
  /** What runs past the right edge of a window `width` wide, to name it when the test fails. */
  const overflowing = (width: number) =>
    page.evaluate(
      (limit) =>
        [...document.querySelectorAll('body *')]
          // Past the edge, or text running out of its box (which the box's own edge does not show).
          .filter((element) => element.getBoundingClientRect().right > limit || (element.clientWidth > 1 && element.scrollWidth > element.clientWidth + 1))
          .slice(0, 5)
          .map((element) => `${element.tagName.toLowerCase()}.${element.className}: ${Math.round(element.getBoundingClientRect().right)}px, ${element.scrollWidth}/${element.clientWidth}`),
      width,
    );

  async function screenshot(name: string): Promise<void> {
    if (SCREENSHOTS) await page.screenshot({ path: new URL(`${name}.png`, SCREENSHOTS).pathname, fullPage: true });
  }

  it('takes an admin through a failing endpoint, its fix and a redelivery', async () => {
    const foreign: string[] = [];
    page.on('requestfailed', (request) => {
      if (!request.url().startsWith(origin)) foreign.push(request.url());
    });
    const consoleErrors: string[] = [];
    page.on('pageerror', (error) => consoleErrors.push(error.message));

    // Sign in: an agent key is refused with a message that says why.
    await page.goto(`${origin}/admin/`);
    await screenshot('console-sign-in');
    const agent = await server.keyFor('agent');
    await page.getByLabel('Admin API key').fill(agent.key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/agent key.*admin key/);
    await page.getByLabel('Admin API key').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('helpdesk.adminKey'))).toBe(ADMIN_TOKEN);

    // Create a webhook: a plain-http URL is refused next to its field, as the API would.
    await page.getByRole('link', { name: 'New webhook' }).click();
    await page.getByLabel('Name').fill('Local receiver');
    await page.getByLabel('Target URL').fill(receiver.url().replace('https:', 'http:'));
    await page.getByLabel('ticket.updated').check();
    await page.getByRole('button', { name: 'Create webhook' }).click();
    await expect.poll(() => page.locator('#targetUrl-error').textContent()).toBe('must be an https URL');
    expect(await page.getByLabel('Target URL').getAttribute('aria-invalid')).toBe('true');
    expect((await server.request('GET', '/webhooks')).body.webhooks).toHaveLength(0);
    await page.getByLabel('Target URL').fill(receiver.url());
    await page.getByRole('button', { name: 'Create webhook' }).click();

    // The secret, shown once: copied with the button, it is the one deliveries are signed with.
    const dialog = page.getByRole('dialog', { name: 'Webhook created' });
    await dialog.waitFor();
    await expect.poll(() => dialog.textContent()).toMatch(/only time the secret is shown/);
    const shown = await dialog.getByLabel('Signing secret').inputValue();
    expect(shown).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    await dialog.getByRole('button', { name: 'Copy' }).click();
    await expect.poll(() => dialog.textContent()).toMatch(/Copied to the clipboard/);
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    expect(copied).toBe(shown);
    await screenshot('console-secret-shown-once');
    // Escape does not close it, even twice (Chromium lets a second Escape through a refused
    // cancel): the secret is shown once, so only the explicit button closes it.
    await page.keyboard.press('Escape');
    await page.keyboard.press('Escape');
    expect(await dialog.isVisible()).toBe(true);
    expect(await dialog.getByLabel('Signing secret').inputValue()).toBe(shown);
    await dialog.getByRole('button', { name: 'I have copied it' }).click();
    await page.getByRole('heading', { name: 'Local receiver' }).waitFor();
    const webhookId = page.url().split('/').pop()!;
    expect(webhookId).toMatch(/^whk_/);

    // A ticket, made in the console: its delivery appears as succeeded, signed with that secret.
    await nav('Tickets').click();
    await page.getByRole('link', { name: 'New ticket' }).click();
    await page.getByLabel('Subject').fill('Printer on fire');
    await page.getByLabel('Tags').fill('hardware, urgent');
    await page.getByRole('button', { name: 'Create ticket' }).click();
    await page.getByRole('link', { name: 'Printer on fire' }).waitFor();
    await screenshot('console-tickets');
    const [delivered] = await receiver.waitForRequests(1);
    expect(() => new StandardWebhook(copied).verify(delivered!.body, delivered!.headers)).not.toThrow();
    expect(JSON.parse(delivered!.body)).toMatchObject({ event: 'ticket.created', data: { ticket: { subject: 'Printer on fire', tags: ['hardware', 'urgent'] } } });

    await page.goto(`${origin}/admin/#/webhooks/${webhookId}`);
    const rows = page.locator('tr[data-delivery-id]');
    await expect.poll(() => rows.first().textContent(), { timeout: SHOWS_WITHIN_MS }).toMatch(/ticket\.created.*succeeded/);

    // The receiver breaks; an edit in the console makes ticket.updated, which fails.
    receiver.respondWith(() => ({ status: 500, body: 'receiver down: database locked' }));
    await nav('Tickets').click();
    await page.getByRole('link', { name: 'Printer on fire' }).click();
    await page.getByLabel('Status').selectOption('pending');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('link', { name: 'Printer on fire' }).waitFor();
    await page.goto(`${origin}/admin/#/webhooks/${webhookId}`);
    // The test server's schedule is 0.05, 0.1 and 0.2 s: four attempts, then failed.
    await expect.poll(() => rows.first().textContent(), { timeout: SHOWS_WITHIN_MS }).toMatch(/ticket\.updated.*failed.*4.*500/);
    // Filtered by status, then by event: only the matching deliveries are listed. The filters are
    // folded away until asked for, leaving the page to the list.
    // (Each wait is for the rows of the new filter, not a count the old one may also give.)
    expect(await page.getByLabel('Status', { exact: true }).isVisible()).toBe(false);
    expect(await page.getByLabel('Recover failed deliveries created since').isVisible()).toBe(false);
    await unfold('Filters');
    await page.getByLabel('Status', { exact: true }).selectOption('failed');
    await expect.poll(() => rows.allTextContents(), { timeout: SHOWS_WITHIN_MS }).toEqual([expect.stringMatching(/ticket\.updated.*failed/)]);
    await page.getByLabel('Status', { exact: true }).selectOption('');
    await page.getByLabel('Event').selectOption('ticket.created');
    await expect.poll(() => rows.allTextContents(), { timeout: SHOWS_WITHIN_MS }).toEqual([expect.stringMatching(/ticket\.created.*succeeded/)]);
    await page.getByLabel('Event').selectOption('');
    await expect.poll(() => rows.allTextContents(), { timeout: SHOWS_WITHIN_MS }).toEqual([expect.stringMatching(/ticket\.updated/), expect.stringMatching(/ticket\.created/)]);
    const failedRow = page.locator('tr[data-delivery-id]', { hasText: 'ticket.updated' });
    const deliveryId = (await failedRow.getAttribute('data-delivery-id'))!;
    // Each row shows its msg_ id (the webhook-id receivers log) and its ticket, linked, with the
    // version its event carries: the creation was 1, the change 2.
    expect(await page.getByRole('columnheader').nth(1).textContent()).toBe('Webhook-id');
    expect(await failedRow.locator('td').nth(1).textContent()).toBe(deliveryId);
    expect(await page.getByRole('columnheader').nth(3).textContent()).toBe('Ticket');
    const ticketId = (await server.request('GET', '/tickets')).body.tickets.find((t: { subject: string }) => t.subject === 'Printer on fire').id as string;
    expect(await failedRow.locator('td').nth(3).textContent()).toMatch(/v2$/);
    expect(await failedRow.locator('td').nth(3).getByRole('link').getAttribute('href')).toBe(`#/tickets/${ticketId}`);
    expect(await page.locator('tr[data-delivery-id]', { hasText: 'ticket.created' }).locator('td').nth(3).textContent()).toMatch(/v1$/);

    // Found by its id: the list narrows to it and opens it; an id of the wrong shape is refused
    // next to the field.
    await page.getByLabel('Find by webhook-id').fill('not-an-id');
    await page.getByRole('button', { name: 'Find' }).click();
    await expect.poll(() => page.locator('#delivery-search-error').textContent()).toMatch(/msg_/);
    await page.getByLabel('Find by webhook-id').fill(deliveryId);
    await page.getByRole('button', { name: 'Find' }).click();
    await expect.poll(() => rows.allTextContents(), { timeout: SHOWS_WITHIN_MS }).toEqual([expect.stringContaining(deliveryId)]);
    const panel = page.locator(`#delivery-${deliveryId}`);
    await expect.poll(() => panel.locator('.attempt').count()).toBe(4);
    await page.getByRole('button', { name: 'Show all' }).click();
    await expect.poll(() => rows.count(), { timeout: SHOWS_WITHIN_MS }).toBe(2);
    // The status once ("500", not "500 http_status"), and the receiver's body.
    const firstAttempt = panel.locator('.attempt').first();
    await expect.poll(() => firstAttempt.textContent()).toMatch(/^500 · \d+ ms · .*receiver down: database locked/s);
    expect(await firstAttempt.textContent()).not.toContain('http_status');
    // The headers as sent: the user agent the receiver saw, the timestamp as a readable date too.
    const sent = receiver.requests.find((r) => r.headers['webhook-id'] === deliveryId)!;
    const headerRow = (name: string) => panel.locator('table.headers tr', { has: page.locator('th', { hasText: new RegExp(`^${name}$`) }) }).locator('td');
    await expect.poll(() => headerRow('user-agent').textContent()).toBe(sent.headers['user-agent']);
    expect(sent.headers['user-agent']).toMatch(/^Helpdesk-Webhooks\/\d+\.\d+\.\d+/);
    expect(await headerRow('webhook-timestamp').textContent()).toMatch(new RegExp(`^\\d{10} \\(.*${new Date().getFullYear()}.*(ago|now).*\\)$`));
    expect(await panel.textContent()).toContain(deliveryId);
    expect(await panel.textContent()).toContain('"updatedFields"');
    // The change was the ticket's second version (docs/api.md, "Versions").
    expect(await panel.textContent()).toMatch(/Ticket version\s*2/);
    await screenshot('console-failed-delivery');

    // Fixed: redeliver, and the same delivery succeeds with the same webhook-id.
    receiver.respondWith(() => ({ status: 200, body: 'ok now' }));
    const before = receiver.requests.length;
    await failedRow.getByRole('button', { name: 'Redeliver' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toMatch(/Redelivery queued/);
    await expect.poll(() => failedRow.textContent(), { timeout: SHOWS_WITHIN_MS }).toMatch(/succeeded.*5.*200/);
    await expect.poll(() => panel.locator('.attempt').count()).toBe(5);
    await expect.poll(() => panel.locator('.attempt').last().textContent()).toMatch(/200.*ok now/s);
    const redelivered = receiver.requests.slice(before);
    expect(redelivered).toHaveLength(1);
    expect(redelivered[0]!.headers['webhook-id']).toBe(deliveryId);

    await nav('Webhooks').click();
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();

    // The webhooks table shows deliveries and attempts apart over the last 24 hours: both
    // deliveries succeeded in the end (one after a redelivery), 2 of 6 attempts did.
    const row = page.getByRole('row', { name: /Local receiver/ });
    await expect.poll(() => row.locator('.deliveries-rate').textContent()).toBe('100 % of 2 finished deliveries');
    expect(await row.locator('.attempts-rate').textContent()).toBe('33.3 % of 6 attempts');
    expect(await row.textContent()).toMatch(/ticket\.created, ticket\.updated.*yes.*sending/);
    // The last delivery's time is relative, with the exact time in its title.
    const time = row.locator('time');
    expect(await time.textContent()).toMatch(/ago|now/);
    expect(await time.getAttribute('title')).toContain(String(new Date().getFullYear()));
    await screenshot('console-webhooks');

    // Sign out: the key is forgotten and the sign-in form is back.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin API key').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('helpdesk.adminKey'))).toBeNull();

    expect(foreign).toEqual([]);
    expect(consoleErrors).toEqual([]);
  }, 120_000);

  it('deactivates, rotates and deletes from the webhook page, with a confirmation before deleting', async () => {
    const created = await server.request('POST', '/webhooks', { body: { webhook: { name: 'To manage', targetUrl: receiver.url(), events: ['ticket.deleted'] } } });
    const id = created.body.webhook.id;
    await page.goto(`${origin}/admin/`);
    await page.getByLabel('Admin API key').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.goto(`${origin}/admin/#/webhooks/${id}`);
    await page.getByRole('heading', { name: 'To manage' }).waitFor();

    // Deactivating asks first, saying that pending deliveries are failed; Cancel changes nothing.
    await page.getByRole('button', { name: 'Deactivate' }).click();
    const deactivate = page.getByRole('dialog', { name: 'Deactivate this webhook?' });
    await expect.poll(() => deactivate.textContent()).toMatch(/pending delivery is marked failed/);
    await deactivate.getByRole('button', { name: 'Cancel' }).click();
    await deactivate.waitFor({ state: 'hidden' });
    expect((await server.request('GET', `/webhooks/${id}`)).body.webhook.active).toBe(true);
    await page.getByRole('button', { name: 'Deactivate' }).click();
    await deactivate.getByRole('button', { name: 'Deactivate' }).click();
    await page.getByRole('button', { name: 'Activate' }).waitFor();
    expect((await server.request('GET', `/webhooks/${id}`)).body.webhook.active).toBe(false);

    // Recovering an inactive webhook's deliveries is refused by the API; the page says why.
    await unfold('Recover failed deliveries');
    await page.getByRole('button', { name: 'Recover failed' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/inactive/);
    await page.getByRole('button', { name: 'Activate' }).click();
    await page.getByRole('button', { name: 'Deactivate' }).waitFor();
    // A notice belongs to its page: it does not follow the admin to another one.
    await expect.poll(() => page.locator('.notice').textContent()).toMatch(/Webhook activated/);
    await nav('Tickets').click();
    await page.getByRole('heading', { name: 'Tickets' }).waitFor();
    expect(await page.locator('.notice').count()).toBe(0);
    await page.goBack();
    await page.getByRole('heading', { name: 'To manage' }).waitFor();
    expect(await page.locator('.notice').count()).toBe(0);
    await unfold('Recover failed deliveries');
    await page.getByRole('button', { name: 'Recover failed' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toMatch(/^0 failed deliveries queued again/);
    // A notice can be dismissed.
    await page.getByRole('button', { name: 'Dismiss notice' }).click();
    expect(await page.locator('.notice').count()).toBe(0);

    // Rotating asks first, saying the old secret stays valid for 24 hours.
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    const rotate = page.getByRole('dialog', { name: 'Rotate the signing secret?' });
    await expect.poll(() => rotate.textContent()).toMatch(/stays valid for 24 hours/);
    await rotate.getByRole('button', { name: 'Cancel' }).click();
    await rotate.waitFor({ state: 'hidden' });
    expect(await page.getByRole('dialog', { name: 'New signing secret' }).count()).toBe(0);
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    await rotate.getByRole('button', { name: 'Rotate secret' }).click();
    const dialog = page.getByRole('dialog', { name: 'New signing secret' });
    const rotated = await dialog.getByLabel('Signing secret').inputValue();
    expect(rotated).toMatch(/^whsec_/);
    expect(rotated).not.toBe(created.body.webhook.signingSecret);
    await page.keyboard.press('Escape');
    await page.keyboard.press('Escape');
    expect(await dialog.isVisible()).toBe(true);
    await dialog.getByRole('button', { name: 'I have copied it' }).click();
    // The notice of the rotation disappears by itself.
    await expect.poll(() => page.locator('.notice').count(), { timeout: 10_000 }).toBe(0);

    // The test event is signed with both live secrets: the new one verifies it. Its receiver
    // answers 204 with no body: the attempt says so in a word, with no empty box.
    receiver.respondWith(() => ({ status: 204 }));
    const before = receiver.requests.length;
    await page.getByRole('button', { name: 'Send test event' }).click();
    const [test] = (await receiver.waitForRequests(before + 1)).slice(before);
    expect(() => new StandardWebhook(rotated).verify(test!.body, test!.headers)).not.toThrow();
    const testRow = page.locator('tr[data-delivery-id]', { hasText: 'webhook.test' });
    await expect.poll(() => testRow.textContent(), { timeout: SHOWS_WITHIN_MS }).toMatch(/succeeded.*204/);
    await testRow.getByRole('button', { name: 'Details' }).click();
    const attempt = page.locator(`#delivery-${await testRow.getAttribute('data-delivery-id')} .attempt`);
    await expect.poll(() => attempt.textContent()).toMatch(/^204 · \d+ ms · .* · no body/);
    expect(await attempt.locator('pre.response-body').count()).toBe(0);
    expect(await page.locator('body').textContent()).not.toContain('(empty)');
    receiver.respondWith(() => ({ status: 200, body: 'ok' }));

    // Delete asks first; cancelling keeps the webhook.
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete this webhook?' });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'hidden' });
    expect((await server.request('GET', `/webhooks/${id}`)).status).toBe(200);
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await confirm.getByRole('button', { name: 'Delete webhook' }).click();
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
    expect((await server.request('GET', `/webhooks/${id}`)).status).toBe(404);
  }, 60_000);

  it('offers operational events in the event picker, and shows what a webhook.disabled delivery reports, one click from the webhook', async () => {
    const gone = await startReceiver({ responder: () => ({ status: 410 }) });
    try {
      await signIn();
      await page.getByRole('link', { name: 'New webhook' }).click();
      await page.getByLabel('Name').fill('Alerts');
      await page.getByLabel('Target URL').fill(receiver.url('/alerts'));
      await page.getByLabel('ticket.created').uncheck();
      await page.getByLabel('webhook.disabled').check();
      // Listed apart from ticket events, with the word that filters do not choose among them.
      await expect.poll(() => page.locator('#operational-events-hint').textContent()).toMatch(/filter below does not apply/);
      expect(await page.getByLabel('delivery.failed').isChecked()).toBe(false);
      await page.getByRole('button', { name: 'Create webhook' }).click();
      await page.getByRole('dialog', { name: 'Webhook created' }).getByRole('button', { name: 'I have copied it' }).click();
      await page.getByRole('heading', { name: 'Alerts' }).waitFor();
      const alertsId = page.url().split('/').pop()!;
      expect((await server.request('GET', `/webhooks/${alertsId}`)).body.webhook.events).toEqual(['webhook.disabled']);

      // Another webhook's receiver answers 410: it is deactivated, and the alert is in this log.
      const dying = await server.request('POST', '/webhooks', { body: { webhook: { name: 'Dying', targetUrl: gone.url(), events: ['ticket.created'] } } });
      expect((await server.request('POST', '/tickets', { body: { ticket: { subject: 'to a gone receiver' } } })).status).toBe(201);
      const row = page.locator('tr[data-delivery-id]', { hasText: 'webhook.disabled' });
      await expect.poll(() => row.textContent(), { timeout: SHOWS_WITHIN_MS }).toMatch(/succeeded/);
      // No ticket: the column says so rather than linking anywhere.
      expect(await row.locator('td[data-label="Ticket"]').textContent()).toBe('—');
      await row.getByRole('button', { name: 'Details' }).click();
      const subject = page.locator('.operational-subject');
      await expect.poll(() => subject.textContent()).toMatch(/^Webhook Dying was deactivated/);
      await subject.getByRole('link', { name: 'Dying' }).click();
      await page.getByRole('heading', { name: 'Dying' }).waitFor();
      await expect.poll(() => page.locator('body').textContent()).toMatch(/gone/);

      // The event feed lists ticket changes only: its type filter offers no operational event.
      await nav('Events').click();
      await page.getByRole('heading', { name: 'Events', exact: true }).waitFor();
      await unfold('Filters');
      await page.getByLabel('ticket.deleted').waitFor();
      expect(await page.getByLabel('webhook.disabled').count()).toBe(0);
      for (const id of [alertsId, dying.body.webhook.id]) expect((await server.request('DELETE', `/webhooks/${id}`)).status).toBe(204);
    } finally {
      await gone.close();
    }
  }, 60_000);

  it('labels every control, keeps text readable (contrast 4.5:1), and can be worked with the keyboard alone', async () => {
    await page.goto(`${origin}/admin/`);
    // Tab to the key field, type, Enter: signed in.
    await page.keyboard.press('Tab');
    await page.keyboard.type(ADMIN_TOKEN);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
    const unlabelled = () =>
      page.evaluate(() =>
        [...document.querySelectorAll('input, select, textarea, button')]
          .filter((el) => {
            const control = el as HTMLInputElement;
            const named = (control.labels?.length ?? 0) > 0 || el.getAttribute('aria-label') || (el.tagName === 'BUTTON' && el.textContent?.trim());
            return !named;
          })
          .map((el) => el.outerHTML.slice(0, 120)),
      );
    // WCAG AA: text at least 4.5 times as light as its background, or the other way round.
    const lowContrast = () =>
      page.evaluate(() => {
        const channels = (color: string) => (color.match(/[\d.]+/g) ?? []).map(Number);
        const luminance = ([r, g, b]: number[]) => {
          const linear = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
          return 0.2126 * linear(r!) + 0.7152 * linear(g!) + 0.0722 * linear(b!);
        };
        const background = (element: Element | null): number[] => {
          for (let at = element; at; at = at.parentElement) {
            const color = channels(getComputedStyle(at).backgroundColor);
            if (color.length === 3 || (color[3] ?? 0) > 0) return color;
          }
          return [255, 255, 255];
        };
        const texts = [...document.querySelectorAll('h1, h2, p, a, button, label, legend, th, td, dt, dd, .badge, .hint')].filter(
          (el) => el.textContent?.trim() && (el as HTMLElement).offsetParent !== null,
        );
        const ratios = texts.map((el) => {
          const [a, b] = [luminance(channels(getComputedStyle(el).color)), luminance(background(el))];
          return { text: el.textContent!.trim().slice(0, 40), ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
        });
        return { checked: ratios.length, low: ratios.filter((entry) => entry.ratio < 4.5) };
      });
    for (const hash of ['#/webhooks', '#/webhooks/new', '#/tickets', '#/tickets/new', '#/users', '#/events']) {
      await page.goto(`${origin}/admin/${hash}`);
      await page.locator(hash.endsWith('new') ? 'form' : 'h1').waitFor();
      expect({ hash, unlabelled: await unlabelled() }).toEqual({ hash, unlabelled: [] });
      const contrast = await lowContrast();
      expect(contrast.checked).toBeGreaterThan(5);
      expect({ hash, lowContrast: contrast.low }).toEqual({ hash, lowContrast: [] });
    }
    await page.goto(`${origin}/admin/#/tickets/new`);
    await page.locator('form').waitFor();
    // The ticket form, by keyboard: focus the subject, type, submit with Enter. The API refuses
    // the email (the form leaves that rule to it): its error shows next to the field.
    await page.getByLabel('Subject').focus();
    await page.keyboard.type('Typed, not clicked');
    await page.getByLabel('Requester email').fill('not-an-email');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#requesterEmail-error').textContent()).toMatch(/email/);
    expect(await page.getByLabel('Requester email').getAttribute('aria-invalid')).toBe('true');
    await page.getByLabel('Requester email').fill('');
    await page.getByLabel('Requester email').press('Enter');
    await page.getByRole('link', { name: 'Typed, not clicked' }).waitFor();
    const tickets = (await server.request('GET', '/tickets?limit=100')).body.tickets as { subject: string }[];
    expect(tickets.some((t) => t.subject === 'Typed, not clicked')).toBe(true);
  }, 60_000);

  it('says when a page does not exist or the server is down, with a way back or a retry, and has a favicon', async () => {
    await signIn();
    // An unknown route is a page of its own, not the webhook list in disguise.
    await page.goto(`${origin}/admin/#/no-such-page`);
    await page.getByRole('heading', { name: 'Page not found' }).waitFor();
    expect(await page.getByRole('heading', { name: 'Webhooks' }).count()).toBe(0);
    await page.getByRole('link', { name: /Back to the webhooks/ }).click();
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
    await page.goto(`${origin}/admin/#/webhooks/whk_0123456789abcdef/nothing`);
    await page.getByRole('heading', { name: 'Page not found' }).waitFor();

    // A webhook that is not there: said, with a way back.
    await page.goto(`${origin}/admin/#/webhooks/whk_0123456789abcdef`);
    await page.getByRole('heading', { name: 'Webhook not found' }).waitFor();
    await page.getByRole('link', { name: /Back to the webhooks/ }).click();
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();

    // The server down: the error alone (no "Loading…" beside it), and Retry brings the page back.
    await page.route(`${origin}/helpdesk/api/v1/**`, (route) => route.abort('connectionrefused'));
    await nav('Tickets').click();
    await page.getByRole('heading', { name: 'Tickets' }).waitFor();
    await expect.poll(() => page.getByRole('alert').allTextContents()).toEqual([expect.stringMatching(/cannot be reached/)]);
    expect(await page.getByText('Loading…').count()).toBe(0);
    await page.unroute(`${origin}/helpdesk/api/v1/**`);
    await page.getByRole('button', { name: 'Retry' }).click();
    await page.getByRole('link', { name: 'New ticket' }).waitFor();
    await expect.poll(() => page.getByRole('alert').count()).toBe(0);

    // A favicon of its own, served beside the page.
    const icon = await page.locator('link[rel="icon"]').getAttribute('href');
    const served = await page.request.get(new URL(icon!, page.url()).href);
    expect(served.status()).toBe(200);
    expect(served.headers()['content-type']).toMatch(/^image\/svg\+xml/);
  }, 60_000);

  it('lists users and keys, creates both (the key shown once), and revokes a key after asking', async () => {
    await signIn();
    await nav('Users and keys').click();
    await page.getByRole('heading', { name: 'Users and API keys' }).waitFor();
    await page.locator('summary', { hasText: 'New user' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Ada Agent');
    await page.getByLabel('Email').fill(`ada-${Date.now()}@example.com`);
    await page.getByLabel('Role').selectOption('agent');
    await page.getByRole('button', { name: 'Create user' }).click();
    const userRow = page.locator('tr[data-user-id]', { hasText: 'Ada Agent' });
    await userRow.waitFor();
    const userId = (await userRow.getAttribute('data-user-id'))!;
    expect((await server.request('GET', `/users/${userId}`)).body.user).toMatchObject({ name: 'Ada Agent', role: 'agent' });

    // A key for her: shown once, Escape does not close it, and it works.
    await page.locator('summary', { hasText: 'New API key' }).click();
    await page.getByLabel('Key name').fill('ada laptop');
    await page.getByLabel('For user').selectOption(userId);
    await page.getByRole('button', { name: 'Create key' }).click();
    const dialog = page.getByRole('dialog', { name: 'API key created' });
    await dialog.waitFor();
    const key = await dialog.getByLabel('API key').inputValue();
    expect(key).toMatch(/^hdk_/);
    await page.keyboard.press('Escape');
    await page.keyboard.press('Escape');
    expect(await dialog.isVisible()).toBe(true);
    await dialog.getByRole('button', { name: 'I have copied it' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const asAda = () => page.request.get(`${origin}/helpdesk/api/v1/tickets?limit=1`, { headers: { authorization: `Bearer ${key}` } });
    expect((await asAda()).status()).toBe(200);
    const keyRow = page.locator('tr[data-key-id]', { hasText: 'ada laptop' });
    await expect.poll(() => keyRow.textContent()).toMatch(/Ada Agent \(agent\)/);
    await expect.poll(() => userRow.locator('td').nth(3).textContent()).toBe('1');

    // Revoking asks first; Cancel keeps the key, Revoke ends it at once.
    await keyRow.getByRole('button', { name: 'Revoke' }).click();
    const confirm = page.getByRole('dialog', { name: 'Revoke this API key?' });
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'hidden' });
    expect((await asAda()).status()).toBe(200);
    await keyRow.getByRole('button', { name: 'Revoke' }).click();
    await confirm.getByRole('button', { name: 'Revoke key' }).click();
    await keyRow.waitFor({ state: 'detached' });
    expect((await asAda()).status()).toBe(401);
    await expect.poll(() => page.getByRole('status').textContent()).toMatch(/revoked/);
  }, 60_000);

  it('deletes a ticket after asking, and shows a ticket\'s deliveries across webhooks', async () => {
    const hooks = [];
    for (const name of ['Ticket hook A', 'Ticket hook B']) {
      hooks.push((await server.request('POST', '/webhooks', { body: { webhook: { name, targetUrl: receiver.url(), events: ['ticket.created', 'ticket.deleted'] } } })).body.webhook.id as string);
    }
    const ticket = (await server.request('POST', '/tickets', { body: { ticket: { subject: 'Across webhooks' } } })).body.ticket;
    await signIn();
    await nav('Tickets').click();
    await page.locator('tr', { hasText: 'Across webhooks' }).getByRole('link', { name: 'Deliveries' }).click();
    await page.getByRole('heading', { name: 'Deliveries of ticket' }).waitFor();
    const rows = page.locator('tr[data-delivery-id]');
    // (The first test's webhook takes ticket.created too: its delivery is listed as well.)
    const ofHooks = rows.filter({ hasText: /Ticket hook/ });
    await expect.poll(() => ofHooks.allTextContents(), { timeout: SHOWS_WITHIN_MS }).toEqual([
      expect.stringMatching(/Ticket hook (A|B)ticket\.created1succeeded1200msg_/),
      expect.stringMatching(/Ticket hook (A|B)ticket\.created1succeeded1200msg_/),
    ]);
    expect(new Set(await ofHooks.locator('td:nth-child(2)').allTextContents())).toEqual(new Set(['Ticket hook A', 'Ticket hook B']));
    // Nothing of another ticket.
    expect(await rows.count()).toBe((await server.request('GET', `/webhooks?limit=100`)).body.webhooks.filter((w: { events: string[] }) => w.events.includes('ticket.created')).length);

    // A delivery's id opens it in its webhook's log, found and unfolded.
    const first = ofHooks.first();
    const deliveryId = (await first.getAttribute('data-delivery-id'))!;
    await first.getByRole('link', { name: deliveryId }).click();
    await page.locator(`#delivery-${deliveryId} .attempt`).first().waitFor();
    expect(await page.locator('tr[data-delivery-id]').count()).toBe(1);

    // Deleting asks first; Cancel keeps the ticket.
    await page.goto(`${origin}/admin/#/tickets/${ticket.id}`);
    await page.getByRole('button', { name: 'Delete ticket' }).click();
    const confirm = page.getByRole('dialog', { name: 'Delete this ticket?' });
    await expect.poll(() => confirm.textContent()).toMatch(/Across webhooks.*ticket\.deleted/);
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    await confirm.waitFor({ state: 'hidden' });
    expect((await server.request('GET', `/tickets/${ticket.id}`)).status).toBe(200);
    await page.getByRole('button', { name: 'Delete ticket' }).click();
    await confirm.getByRole('button', { name: 'Delete ticket' }).click();
    await page.getByRole('heading', { name: 'Tickets' }).waitFor();
    await expect.poll(() => page.getByRole('status').textContent()).toMatch(/Ticket deleted/);
    expect((await server.request('GET', `/tickets/${ticket.id}`)).status).toBe(404);
    // Its deliveries stay in the log: the deletion's too.
    await page.goto(`${origin}/admin/#/tickets/${ticket.id}/deliveries`);
    await expect.poll(() => page.locator('tr[data-delivery-id]', { hasText: 'ticket.deleted' }).count(), { timeout: SHOWS_WITHIN_MS }).toBe(2);
    for (const id of hooks) await server.request('DELETE', `/webhooks/${id}`);
  }, 60_000);

  /** A Prometheus figure of the server, as /metrics gives it (0 when not there yet). */
  async function metric(of: TestServer, name: string): Promise<number> {
    const text = (await of.runtime.app.inject({ method: 'GET', url: '/metrics' })).body;
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? 0 : Number(line.split(' ').at(-1));
  }

  /** A time as a `datetime-local` input takes it, in local time (the browser's zone is this process's). */
  const localInput = (ms: number) => {
    const time = new Date(ms);
    const pad = (n: number) => String(n).padStart(2, '0');
    return `${time.getFullYear()}-${pad(time.getMonth() + 1)}-${pad(time.getDate())}T${pad(time.getHours())}:${pad(time.getMinutes())}`;
  };

  /** The ids of the listed events, top to bottom. */
  const listedEventIds = () => page.locator('tr[data-event-id]').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-event-id')));

  /** Every event of the feed the API gives for `query`, newest first, a page at a time. */
  type ListedEvent = { id: string; event: string; timestamp: string; data: { ticket: { id: string; version: number } } };
  async function feedOf(query: string): Promise<ListedEvent[]> {
    const events: ListedEvent[] = [];
    let cursor: string | null = null;
    do {
      const answer: { events: ListedEvent[]; nextCursor: string | null } = (await server.request('GET', `/events?limit=100&${query}${cursor ? `&cursor=${cursor}` : ''}`)).body;
      events.push(...answer.events);
      cursor = answer.nextCursor;
    } while (cursor);
    return events;
  }

  it('lists the event feed newest first, filters it by type and ticket, shows a payload, and loads more by cursor', async () => {
    const low = (await server.request('POST', '/tickets', { body: { ticket: { subject: 'Feed: raised', priority: 'low' } } })).body.ticket;
    await server.request('PUT', `/tickets/${low.id}`, { body: { ticket: { priority: 'high' } } });
    const gone = (await server.request('POST', '/tickets', { body: { ticket: { subject: 'Feed: deleted' } } })).body.ticket;
    await server.request('DELETE', `/tickets/${gone.id}`);
    // More than a page (50) in the feed, whatever the other tests left: Load more has a page to get.
    const busy = (await server.request('POST', '/tickets', { body: { ticket: { subject: 'Feed: busy' } } })).body.ticket;
    for (let n = (await feedOf('')).length; n <= 60; n++) await server.request('PUT', `/tickets/${busy.id}`, { body: { ticket: { description: `change ${n}` } } });
    const feed = await feedOf('');
    expect(feed.length).toBeGreaterThan(60);

    await signIn();
    await nav('Events').click();
    await page.getByRole('heading', { name: 'Events', exact: true }).waitFor();
    const rows = page.locator('tr[data-event-id]');
    await rows.first().waitFor();
    // The first page, as the API orders it; then the next one, after it.
    expect(await listedEventIds()).toEqual(feed.slice(0, 50).map((e) => e.id));
    await page.getByRole('button', { name: 'Load more' }).click();
    await expect.poll(listedEventIds).toEqual(feed.slice(0, Math.min(100, feed.length)).map((e) => e.id));

    // By type: the deletions only, as the API gives them.
    await unfold('Filters');
    await page.getByLabel('ticket.deleted').check();
    await page.getByRole('button', { name: 'Apply filters' }).click();
    const deletions = (await feedOf('type=ticket.deleted')).map((e) => e.id);
    expect(deletions).toContain(feed.find((e) => e.event === 'ticket.deleted' && e.data.ticket.id === gone.id)!.id);
    await expect.poll(listedEventIds).toEqual(deletions);
    expect(await page.locator('summary').first().textContent()).toBe('Filters (1 on)');

    // A malformed ticket id is refused next to its field, and the list stays.
    await page.getByLabel('Ticket id').fill('12345');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => page.locator('#events-ticket-error').textContent()).toMatch(/tkt_/);
    expect(await page.getByLabel('Ticket id').getAttribute('aria-invalid')).toBe('true');
    expect(await listedEventIds()).toEqual(deletions);

    // By ticket, every type: its update (version 2) above its creation (version 1), each row
    // linking to the ticket.
    await page.getByLabel('ticket.deleted').uncheck();
    await page.getByLabel('Ticket id').fill(low.id);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    const ofLow = feed.filter((e) => e.data.ticket.id === low.id);
    expect(ofLow.map((e) => e.event)).toEqual(['ticket.updated', 'ticket.created']);
    await expect.poll(listedEventIds).toEqual(ofLow.map((e) => e.id));
    expect(await rows.locator('td[data-label="Version"]').allTextContents()).toEqual(['2', '1']);
    expect(await rows.locator('td[data-label="Event"]').allTextContents()).toEqual(['ticket.updated', 'ticket.created']);
    expect(await rows.first().getByRole('link').getAttribute('href')).toBe(`#/tickets/${low.id}`);
    // Ticket and type together.
    await page.getByLabel('ticket.created').check();
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(listedEventIds).toEqual([ofLow[1]!.id]);
    await page.getByLabel('ticket.created').uncheck();
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(listedEventIds).toEqual(ofLow.map((e) => e.id));

    // A click on the row shows the payload GET /events/:id gives, as a receiver gets it.
    const update = ofLow[0]!;
    await rows.first().locator('td[data-label="Time"]').click();
    const panel = page.locator(`#event-${update.id}`);
    const shown = JSON.parse((await panel.locator('pre.event-payload').textContent())!);
    const { id: _id, ...payload } = (await server.request('GET', `/events/${update.id}`)).body.event;
    expect(shown).toEqual(payload);
    expect(shown).toMatchObject({ event: 'ticket.updated', data: { ticket: { id: low.id, version: 2, updatedFields: { priority: { from: 'low', to: 'high' } } } } });
    expect(await panel.textContent()).toContain(update.id);
    expect(await rows.first().getByRole('button', { name: 'Hide payload' }).getAttribute('aria-expanded')).toBe('true');
    await screenshot('console-events');
    // At 390 px the filters, the rows and an open payload fit the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await pageWidth(), (await overflowing(390)).join(', ')).toBeLessThanOrEqual(390);
    await screenshot('console-phone-events');
    await page.setViewportSize({ width: 1280, height: 860 });
    await rows.first().getByRole('button', { name: 'Hide payload' }).click();
    await panel.waitFor({ state: 'detached' });

    // Since a time after every event: none; Clear brings the whole feed back.
    await page.getByLabel('Since').fill(localInput(Date.now() + 3_600_000));
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => page.locator('main').textContent()).toContain('No event matches these filters.');
    await page.getByRole('button', { name: 'Clear' }).click();
    await expect.poll(listedEventIds).toEqual(feed.slice(0, 50).map((e) => e.id));

    // From a ticket's page, its events.
    await page.goto(`${origin}/admin/#/tickets/${low.id}`);
    await page.getByRole('link', { name: 'Events of this ticket' }).click();
    await page.getByRole('heading', { name: 'Events', exact: true }).waitFor();
    await expect.poll(listedEventIds).toEqual(ofLow.map((e) => e.id));
    expect(await page.getByLabel('Ticket id').inputValue()).toBe(low.id);
  }, 90_000);

  it('follows the feed live: new events on top, resumed with Last-Event-ID after a dropped connection, stopped when switched off or left', async () => {
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'Live: before' } } });
    const streams: { url: string; lastEventId: string | undefined }[] = [];
    page.on('request', (request) => {
      if (request.url().includes('/events/stream')) streams.push({ url: request.url(), lastEventId: request.headers()['last-event-id'] });
    });
    await signIn();
    await nav('Events').click();
    await page.locator('tr[data-event-id]').first().waitFor();
    const before = await listedEventIds();
    const follow = page.getByLabel('Follow live');
    await follow.check();
    const state = page.locator('#follow-state');
    await expect.poll(() => state.textContent()).toMatch(/^Live: new events appear at the top/);
    // It started right after the newest event listed: nothing between the two is missed.
    expect(streams).toEqual([{ url: `${origin}/helpdesk/api/v1/events/stream`, lastEventId: before[0] }]);

    // A ticket made after it was switched on shows on top, marked live, once.
    const made = (await server.request('POST', '/tickets', { body: { ticket: { subject: 'Live: after' } } })).body.ticket;
    const created = (await feedOf(`ticketId=${made.id}`))[0]!;
    await expect.poll(listedEventIds, { timeout: SHOWS_WITHIN_MS }).toEqual([created.id, ...before]);
    const top = page.locator('tr[data-event-id]').first();
    expect(await top.locator('td[data-label="Event"]').textContent()).toBe('ticket.createdlive');
    expect(await top.getByRole('link').getAttribute('href')).toBe(`#/tickets/${made.id}`);

    // The connection drops (every socket of the server closed under it): the page resumes after
    // the last event it got, and what happened meanwhile arrives once.
    server.runtime.app.server.closeAllConnections();
    await server.request('PUT', `/tickets/${made.id}`, { body: { ticket: { status: 'pending' } } });
    await expect.poll(() => state.textContent(), { timeout: SHOWS_WITHIN_MS }).toMatch(/Resumed once after the connection dropped/);
    expect(streams.at(-1)).toEqual({ url: `${origin}/helpdesk/api/v1/events/stream`, lastEventId: created.id });
    const updated = (await feedOf(`ticketId=${made.id}&type=ticket.updated`))[0]!;
    await expect.poll(listedEventIds, { timeout: SHOWS_WITHIN_MS }).toEqual([updated.id, created.id, ...before]);
    await expect.poll(() => metric(server, 'helpdesk_event_streams_open')).toBe(1);

    // Switched off: the stream is closed, and the state line goes.
    await follow.uncheck();
    await expect.poll(() => metric(server, 'helpdesk_event_streams_open')).toBe(0);
    expect(await state.textContent()).toBe('');

    // With a type filter, the stream asks for those types only; the ticket filter applies to
    // what it sends. Leaving the page closes the stream.
    await unfold('Filters');
    await page.getByLabel('ticket.deleted').check();
    await page.getByLabel('Ticket id').fill(made.id);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => page.locator('main').textContent()).toContain('No event matches these filters.');
    await follow.check();
    await expect.poll(() => state.textContent()).toMatch(/^Live/);
    expect(streams.at(-1)).toEqual({ url: `${origin}/helpdesk/api/v1/events/stream?type=ticket.deleted`, lastEventId: undefined });
    const other = (await server.request('POST', '/tickets', { body: { ticket: { subject: 'Live: another' } } })).body.ticket;
    await server.request('DELETE', `/tickets/${other.id}`);
    await server.request('DELETE', `/tickets/${made.id}`);
    const deleted = (await feedOf(`ticketId=${made.id}&type=ticket.deleted`))[0]!;
    await expect.poll(listedEventIds, { timeout: SHOWS_WITHIN_MS }).toEqual([deleted.id]);
    await nav('Tickets').click();
    await page.getByRole('heading', { name: 'Tickets' }).waitFor();
    await expect.poll(() => metric(server, 'helpdesk_event_streams_open')).toBe(0);
  }, 60_000);

  it('says plainly when following is refused: a resume refused (400) catches up from the list, a revoked key (401) stops it, a full server (429) is tried again when it says', async () => {
    // 401: the key is revoked while the page is open.
    const admin = await server.keyFor('admin');
    await page.goto(`${origin}/admin/`);
    await page.getByLabel('Admin API key').fill(admin.key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
    await nav('Events').click();
    await page.locator('tr[data-event-id]').first().waitFor();

    // 400: the event to resume after is one the server does not keep (as when retention pruned
    // it while the page was away). The page catches up from the list, as the API advises, and
    // follows again from the newest event listed.
    const streamRequests: (string | undefined)[] = [];
    await page.route(`${origin}/helpdesk/api/v1/events/stream`, (route) => {
      const headers = route.request().headers();
      streamRequests.push(headers['last-event-id']);
      return route.continue(streamRequests.length === 1 ? { headers: { ...headers, 'last-event-id': 'evt_0123456789abcdef0123456789abcdef' } } : {});
    });
    const top = (await listedEventIds())[0];
    await page.getByLabel('Follow live').check();
    await expect.poll(() => page.locator('#follow-state').textContent(), { timeout: SHOWS_WITHIN_MS }).toMatch(/^Live/);
    expect(streamRequests).toEqual([top, top]);
    const caughtUp = (await server.request('POST', '/tickets', { body: { ticket: { subject: 'Followed after a refused resume' } } })).body.ticket;
    await expect.poll(() => page.locator('tr[data-event-id]').first().locator('td[data-label="Ticket"]').textContent(), { timeout: SHOWS_WITHIN_MS }).toBe(caughtUp.id);
    await page.getByLabel('Follow live').uncheck();
    await page.unroute(`${origin}/helpdesk/api/v1/events/stream`);

    const keyId = (await server.request('GET', '/api-keys?limit=100')).body.apiKeys.find((k: { userId: string }) => k.userId === admin.userId).id as string;
    expect((await server.request('DELETE', `/api-keys/${keyId}`)).status).toBe(204);
    // A click, not check(): the refusal can come back and untick the box before check() looks
    // whether the click ticked it, which it would report as a click that changed nothing.
    await page.getByLabel('Follow live').click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/^Following stopped\. The key was refused \(401 unauthorized\): it is unknown or has been revoked\. Sign in again\.$/);
    expect(await page.getByLabel('Follow live').isChecked()).toBe(false);

    // 429: a server that takes one stream, already taken. The page says so, waits the
    // Retry-After it was given, and follows once the place is free.
    const full = await startTestServer('sqlite', { env: { HELPDESK_EVENT_STREAMS: '1' } });
    try {
      await full.runtime.app.listen({ port: 0, host: '127.0.0.1' });
      const fullOrigin = `http://127.0.0.1:${(full.runtime.app.server.address() as AddressInfo).port}`;
      await page.unrouteAll();
      await page.route((url) => url.origin !== fullOrigin, (route) => route.abort());
      const taken = await openSse(fullOrigin, '/helpdesk/api/v1/events/stream', { key: ADMIN_TOKEN });
      expect(taken.status).toBe(200);
      await page.goto(`${fullOrigin}/admin/`);
      await page.getByLabel('Admin API key').fill(ADMIN_TOKEN);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Webhooks' }).waitFor();
      await nav('Events').click();
      await expect.poll(() => page.locator('main').textContent()).toContain('No events yet');
      await page.getByLabel('Follow live').check();
      const state = page.locator('#follow-state');
      await expect.poll(() => state.textContent()).toMatch(/^Reconnecting… The server has too many open streams \(429 rate_limited\): .*HELPDESK_EVENT_STREAMS.* Trying again in 5 s\.$/);
      expect(await page.getByLabel('Follow live').isChecked()).toBe(true);
      taken.close();
      await expect.poll(() => state.textContent(), { timeout: SHOWS_WITHIN_MS }).toMatch(/^Live/);
      // Opened at the present (the feed was empty): a ticket made now shows.
      const ticket = (await full.request('POST', '/tickets', { body: { ticket: { subject: 'After the wait' } } })).body.ticket;
      await expect.poll(() => page.locator('tr[data-event-id] td[data-label="Ticket"]').allTextContents(), { timeout: SHOWS_WITHIN_MS }).toEqual([ticket.id]);
      await screenshot('console-events-live');
      await page.getByLabel('Follow live').uncheck();
      await expect.poll(() => metric(full, 'helpdesk_event_streams_open')).toBe(0);
    } finally {
      await full.close();
    }
  }, 60_000);

  it('sets a filter (tried on the last 20 events first), custom headers and a rate limit in the form, and keeps stored header values on edit', async () => {
    const previews: string[] = [];
    page.on('request', (request) => {
      if (request.url().endsWith('/webhooks/filter-preview')) previews.push(request.postData() ?? '');
    });
    // Events to try the filter on: an urgent ticket created, and a low one created, resolved,
    // then raised to high (ticket.updated + ticket.resolved, then ticket.updated).
    const urgent = (await server.request('POST', '/tickets', { body: { ticket: { subject: 'Filter: urgent one', priority: 'urgent' } } })).body.ticket;
    const low = (await server.request('POST', '/tickets', { body: { ticket: { subject: 'Filter: low one', priority: 'low' } } })).body.ticket;
    expect((await server.request('PUT', `/tickets/${low.id}`, { body: { ticket: { status: 'resolved' } } })).status).toBe(200);
    expect((await server.request('PUT', `/tickets/${low.id}`, { body: { ticket: { priority: 'high' } } })).status).toBe(200);
    const agent = await server.keyFor('agent');

    await signIn();
    await page.goto(`${origin}/admin/#/webhooks/new`);
    await page.getByRole('heading', { name: 'New webhook' }).waitFor();
    // Beside the editor, the document of the latest event: the low ticket raised to high.
    const documentShown = page.locator('.filter-document pre');
    await expect.poll(() => documentShown.textContent()).toContain(low.id);
    expect(JSON.parse((await documentShown.textContent())!)).toMatchObject({ event: 'ticket.updated', ticket: { id: low.id, priority: 'high' }, changes: { priority: { from: 'low', to: 'high' } } });
    expect(await page.locator('.filter-document').textContent()).toMatch(/The latest ticket event: ticket\.updated, ticket version 3/);

    await page.getByLabel('Name', { exact: true }).fill('Filtered receiver');
    await page.getByLabel('Target URL').fill(receiver.url('/filtered'));
    await page.getByLabel('ticket.updated').check();
    const filter = page.getByLabel('Filter', { exact: true });

    // Invalid JSON is said next to the editor, and nothing is asked of the server.
    const asked = previews.length;
    await filter.fill('{"ticket.tags": ');
    await page.getByRole('button', { name: 'Try it on the last 20 events' }).click();
    await expect.poll(() => page.locator('#filter-error').textContent()).toMatch(/^filter is not valid JSON/);
    expect(await filter.getAttribute('aria-invalid')).toBe('true');
    expect(previews.length).toBe(asked);
    // A refused operator: the server's path and message, next to the editor.
    await filter.fill('{"$where": "this.priority == \'urgent\'"}');
    await page.getByRole('button', { name: 'Try it on the last 20 events' }).click();
    await expect.poll(() => page.locator('#filter-error').textContent()).toBe('filter.$where is not a supported operator');
    expect(previews.length).toBe(asked + 1);
    await filter.fill('{"$or": [{"ticket.priority": "urgent"}, {"ticket.subject": {"$regex": "fire"}}]}');
    await page.getByRole('button', { name: 'Create webhook' }).click();
    await expect.poll(() => page.locator('#filter-error').textContent()).toBe('filter.$or[1]["ticket.subject"].$regex is not a supported operator');
    expect((await server.request('GET', '/webhooks?limit=100')).body.webhooks.filter((w: { name: string }) => w.name === 'Filtered receiver')).toEqual([]);

    // The examples fill the editor; the agent's carries a real agent's id.
    await page.getByRole('button', { name: 'Assigned to an agent' }).click();
    await expect.poll(() => filter.inputValue()).toMatch(/"ticket\.assigneeId": "usr_/);
    const agents = (await server.request('GET', '/users?limit=100')).body.users.filter((u: { role: string }) => u.role === 'agent').map((u: { id: string }) => u.id);
    expect(agents).toContain(agent.userId);
    expect(agents).toContain((JSON.parse(await filter.inputValue()) as Record<string, string>)['ticket.assigneeId']);
    await page.getByRole('button', { name: 'Urgent or high priority' }).click();
    expect(JSON.parse(await filter.inputValue())).toEqual({ 'ticket.priority': { $in: ['urgent', 'high'] } });
    await expect.poll(() => page.locator('#filter-error').count()).toBe(0);

    // Tried on the last 20 events: the marks are the filter's and the chosen types'.
    await page.getByRole('button', { name: 'Try it on the last 20 events' }).click();
    const trialRows = page.locator('.trial-events tr[data-event-id]');
    await expect.poll(() => trialRows.count()).toBeGreaterThanOrEqual(5);
    const marks = async (ticketId: string) =>
      trialRows.filter({ has: page.locator(`[title="${ticketId}"]`) }).evaluateAll((rows) => rows.map((row) => `${row.querySelector('td[data-label="Event"]')!.textContent} ${row.getAttribute('data-matched')}`));
    expect(await marks(urgent.id)).toEqual(['ticket.created true']);
    // Newest first: raised to high (matched), the two events of the resolving change (its
    // update, and ticket.resolved, a type not chosen), the creation (low).
    const lowMarks = await marks(low.id);
    expect([lowMarks[0], [...lowMarks.slice(1, 3)].sort(), lowMarks[3]]).toEqual(['ticket.updated true', ['ticket.resolved false', 'ticket.updated false'], 'ticket.created false']);
    expect(await trialRows.filter({ has: page.locator(`[title="${low.id}"]`) }).filter({ hasText: 'ticket.resolved' }).textContent()).toContain('type not chosen');
    expect(await trialRows.filter({ has: page.locator(`[title="${low.id}"]`) }).filter({ hasText: 'ticket.updated' }).last().textContent()).not.toContain('type not chosen');
    const total = await trialRows.count();
    const matched = await page.locator('.trial-events tr[data-matched="true"]').count();
    expect(await page.locator('.trial-count').textContent()).toBe(`${matched} of ${total} would have matched`);
    expect(total).toBeLessThanOrEqual(20);
    expect(previews.at(-1) && JSON.parse(previews.at(-1)!)).toEqual({ filter: { 'ticket.priority': { $in: ['urgent', 'high'] } }, events: ['ticket.created', 'ticket.updated'] });
    // An event's own document can be shown beside the editor.
    await trialRows.filter({ has: page.locator(`[title="${urgent.id}"]`) }).getByRole('button', { name: 'Show' }).click();
    await expect.poll(() => documentShown.textContent()).toContain(urgent.id);

    // Headers: a reserved name is refused on its row by the API, and nothing is created.
    const addHeader = async (name: string, value: string) => {
      await page.getByRole('button', { name: 'Add header' }).click();
      const n = await page.locator('.header-row').count();
      await page.getByLabel(`Name of header ${n}`).fill(name);
      await page.getByLabel(`Value of header ${n}`).fill(value);
    };
    await addHeader('X-Api-Key', 'key-one-secret');
    await addHeader('X-Tenant', 'acme');
    await addHeader('X-Helpdesk-Tenant', 'nope');
    // A rate limit out of range is refused next to its field, before sending.
    await page.getByLabel('Rate limit (deliveries per second)').fill('0');
    await page.getByRole('button', { name: 'Create webhook' }).click();
    await expect.poll(() => page.locator('#rateLimit-error').textContent()).toBe('must be a whole number from 1 to 10000, or empty for no limit');
    await page.getByLabel('Rate limit (deliveries per second)').fill('5');
    await page.getByRole('button', { name: 'Create webhook' }).click();
    const reservedRow = page.locator('.header-row[data-header-name="X-Helpdesk-Tenant"]');
    await expect.poll(() => reservedRow.locator('.field-error').textContent()).toMatch(/^X-Helpdesk-Tenant: is a header Helpdesk sets/);
    expect((await server.request('GET', '/webhooks?limit=100')).body.webhooks.filter((w: { name: string }) => w.name === 'Filtered receiver')).toEqual([]);
    await page.getByRole('button', { name: 'Remove header 3 (X-Helpdesk-Tenant)' }).click();
    await page.getByRole('button', { name: 'Create webhook' }).click();
    const dialog = page.getByRole('dialog', { name: 'Webhook created' });
    await dialog.getByRole('button', { name: 'I have copied it' }).click();
    await page.getByRole('heading', { name: 'Filtered receiver' }).waitFor();
    const webhookId = page.url().split('/').pop()!;
    const stored = async () => (await server.request('GET', `/webhooks/${webhookId}`)).body.webhook;
    const created = await stored();
    expect(created).toMatchObject({ filter: { 'ticket.priority': { $in: ['urgent', 'high'] } }, headers: { 'X-Api-Key': '********', 'X-Tenant': '********' }, rateLimit: 5 });
    expect(Object.keys(created.headers)).toEqual(['X-Api-Key', 'X-Tenant']);
    // The page shows the three, the header values masked.
    expect(JSON.parse((await page.locator('dd.webhook-filter pre').textContent())!)).toEqual(created.filter);
    expect(await page.locator('dd.webhook-headers').textContent()).toBe('X-Api-Key: ********X-Tenant: ********');
    expect(await page.locator('dd.webhook-rate-limit').textContent()).toBe('5 per second');
    expect(await page.locator('main').textContent()).not.toContain('key-one-secret');

    // Received: an urgent ticket goes out with both headers; a low one is filtered out.
    const ours = () => receiver.requests.filter((r) => r.headers['x-helpdesk-webhook-id'] === webhookId);
    await server.request('POST', '/tickets', { body: { ticket: { subject: 'Filter: not for it', priority: 'low' } } });
    const first = (await server.request('POST', '/tickets', { body: { ticket: { subject: 'Filter: for it', priority: 'urgent' } } })).body.ticket;
    await expect.poll(() => ours().length, { timeout: SHOWS_WITHIN_MS }).toBe(1);
    expect(JSON.parse(ours()[0]!.body).data.ticket.id).toBe(first.id);
    expect(ours()[0]!.headers).toMatchObject({ 'x-api-key': 'key-one-secret', 'x-tenant': 'acme' });

    // Edit, changing nothing: the stored values show as names only, and the save changes nothing.
    await page.getByRole('link', { name: 'Edit' }).click();
    await page.getByRole('heading', { name: 'Edit webhook' }).waitFor();
    expect(await page.getByLabel('Name of header 1').inputValue()).toBe('X-Api-Key');
    expect(await page.getByLabel('Name of header 1').getAttribute('readonly')).not.toBeNull();
    expect(await page.getByLabel('Value of header 1').inputValue()).toBe('');
    expect(await page.getByLabel('Value of header 1').getAttribute('placeholder')).toMatch(/stored value kept/);
    expect(await page.getByLabel('Rate limit (deliveries per second)').inputValue()).toBe('5');
    expect(JSON.parse(await filter.inputValue())).toEqual(created.filter);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'Filtered receiver' }).waitFor();
    expect((await stored()).updatedAt).toBe(created.updatedAt);

    // Edit: a new value for X-Tenant, X-Api-Key left as it is, no rate limit any more.
    await page.getByRole('link', { name: 'Edit' }).click();
    await page.getByRole('heading', { name: 'Edit webhook' }).waitFor();
    await page.getByLabel('Value of header 2').fill('globex');
    await page.getByLabel('Rate limit (deliveries per second)').fill('');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'Filtered receiver' }).waitFor();
    expect(await stored()).toMatchObject({ headers: { 'X-Api-Key': '********', 'X-Tenant': '********' }, rateLimit: null });
    expect(await page.locator('dd.webhook-rate-limit').textContent()).toBe('no limit');
    const second = (await server.request('POST', '/tickets', { body: { ticket: { subject: 'Filter: for it again', priority: 'high' } } })).body.ticket;
    await expect.poll(() => ours().length, { timeout: SHOWS_WITHIN_MS }).toBe(2);
    expect(JSON.parse(ours()[1]!.body).data.ticket.id).toBe(second.id);
    expect(ours()[1]!.headers).toMatchObject({ 'x-api-key': 'key-one-secret', 'x-tenant': 'globex' });

    // Edit: X-Tenant removed, the filter emptied (every event of the chosen types).
    await page.getByRole('link', { name: 'Edit' }).click();
    await page.getByRole('heading', { name: 'Edit webhook' }).waitFor();
    await page.getByRole('button', { name: 'Remove header 2 (X-Tenant)' }).click();
    await filter.fill('');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'Filtered receiver' }).waitFor();
    expect(await stored()).toMatchObject({ filter: null, headers: { 'X-Api-Key': '********' } });
    expect(Object.keys((await stored()).headers)).toEqual(['X-Api-Key']);
    expect(await page.locator('dd.webhook-filter').textContent()).toBe('every event of the subscribed types');
    const third = (await server.request('POST', '/tickets', { body: { ticket: { subject: 'Filter: any priority now', priority: 'low' } } })).body.ticket;
    await expect.poll(() => ours().length, { timeout: SHOWS_WITHIN_MS }).toBe(3);
    expect(JSON.parse(ours()[2]!.body).data.ticket.id).toBe(third.id);
    expect(ours()[2]!.headers['x-api-key']).toBe('key-one-secret');
    expect(ours()[2]!.headers['x-tenant']).toBeUndefined();

    // At 390 px the editors and a trial's results fit the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('link', { name: 'Edit' }).click();
    await page.getByRole('heading', { name: 'Edit webhook' }).waitFor();
    await page.getByRole('button', { name: 'Tagged vip' }).click();
    await page.getByRole('button', { name: 'Try it on the last 20 events' }).click();
    await trialRows.first().waitFor();
    expect(await pageWidth(), (await overflowing(390)).join(', ')).toBeLessThanOrEqual(390);
    await screenshot('console-phone-filter');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('heading', { name: 'Filtered receiver' }).waitFor();
    expect(JSON.parse((await page.locator('dd.webhook-filter pre').textContent())!)).toEqual({ 'ticket.tags': 'vip' });
    expect(await pageWidth(), (await overflowing(390)).join(', ')).toBeLessThanOrEqual(390);
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.getByRole('link', { name: 'Edit' }).click();
    await page.getByRole('heading', { name: 'Edit webhook' }).waitFor();
    await page.getByRole('button', { name: 'Urgent or high priority' }).click();
    await page.getByRole('button', { name: 'Try it on the last 20 events' }).click();
    await expect.poll(() => page.locator('.trial-count').textContent()).toMatch(/would have matched/);
    await screenshot('console-webhook-filter');
    await server.request('DELETE', `/webhooks/${webhookId}`);
  }, 90_000);

  it('fits a 390 px phone screen: the header wraps, tables stack, nothing scrolls sideways', async () => {
    // A webhook whose target refuses connections: its last answer is the error, not a blank.
    const closed = await startReceiver();
    const closedUrl = `${closed.url()}/a/rather/long/path/to/show/how/the/target/wraps/on/a/phone`;
    await closed.close();
    const hook = (await server.request('POST', '/webhooks', { body: { webhook: { name: 'Refusing receiver', targetUrl: closedUrl, events: ['ticket.created'] } } })).body.webhook.id as string;
    const ticket = (await server.request('POST', '/tickets', { body: { ticket: { subject: 'Seen on a phone', tags: ['mobile'] } } })).body.ticket;

    await signIn();
    // At 1280 px the target's host stays on one line (it used to break mid-host).
    const origins = page.locator('td.url .url-origin');
    await expect.poll(() => origins.count()).toBeGreaterThan(0);
    for (const lines of await origins.evaluateAll((spans) => spans.map((span) => span.getClientRects().length))) expect(lines).toBe(1);

    await page.setViewportSize({ width: 390, height: 844 });
    const pages: [string, string][] = [
      ['#/webhooks', 'Webhooks'],
      [`#/webhooks/${hook}`, 'Refusing receiver'],
      ['#/webhooks/new', 'New webhook'],
      ['#/tickets', 'Tickets'],
      [`#/tickets/${ticket.id}`, 'Edit ticket'],
      [`#/tickets/${ticket.id}/deliveries`, 'Deliveries of ticket'],
      ['#/users', 'Users and API keys'],
      ['#/events', 'Events'],
    ];
    for (const [hash, heading] of pages) {
      await page.goto(`${origin}/admin/${hash}`);
      await page.getByRole('heading', { name: heading, exact: true }).waitFor();
      await page.locator('main :is(table, form) >> visible=true').first().waitFor();
      expect(await pageWidth(), `${hash}: ${(await overflowing(390)).join(', ')}`).toBeLessThanOrEqual(390);
    }
    // The header's links all show, within the screen.
    for (const link of await page.getByRole('navigation', { name: 'Sections' }).getByRole('link').all()) {
      const box = (await link.boundingBox())!;
      expect(box.x + box.width).toBeLessThanOrEqual(390);
    }

    // The refusing webhook's deliveries, stacked, with a delivery's details open.
    await page.goto(`${origin}/admin/#/webhooks/${hook}`);
    const row = page.locator('tr[data-delivery-id]').first();
    await expect.poll(() => row.locator('td[data-label="Last answer"]').textContent(), { timeout: SHOWS_WITHIN_MS }).toMatch(/^connection_refused the target refused the connection$/);
    await row.getByRole('button', { name: 'Details' }).click();
    await page.locator('.delivery-panel .attempt').first().waitFor();
    expect(await page.locator('.delivery-panel .attempt').first().textContent()).toMatch(/^no answer connection_refused: the target refused the connection · \d+ ms/);
    // And what the network said, which tells a wrong port from a firewall, wrapped to the screen.
    expect(await page.locator('.delivery-panel .attempt .error-message').first().textContent()).toMatch(/^The network said connect ECONNREFUSED (127\.0\.0\.1|::1):\d+$/);
    expect(await pageWidth()).toBeLessThanOrEqual(390);
    await screenshot('console-phone-deliveries');
    await page.goto(`${origin}/admin/#/webhooks`);
    await page.locator('table').waitFor();
    expect(await pageWidth()).toBeLessThanOrEqual(390);
    await screenshot('console-phone-webhooks');
    await server.request('DELETE', `/webhooks/${hook}`);
  }, 60_000);

  /** How many pixels of the canvas under `selector` have this colour (give or take anti-aliasing). */
  const pixelsOf = (selector: string, rgb: [number, number, number]) =>
    page.locator(selector).evaluate((canvas, colour) => {
      const { data } = (canvas as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, (canvas as HTMLCanvasElement).width, (canvas as HTMLCanvasElement).height);
      let count = 0;
      for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i]! - colour[0]) + Math.abs(data[i + 1]! - colour[1]) + Math.abs(data[i + 2]! - colour[2]) < 30 && data[i + 3]! > 200) count += 1;
      return count;
    }, rgb);
  const SUCCEEDED: [number, number, number] = [0x1a, 0x6e, 0x35];
  const FAILED: [number, number, number] = [0xb3, 0x26, 0x1e];
  const P50: [number, number, number] = [0x0b, 0x5c, 0xad];
  const P95: [number, number, number] = [0x8a, 0x53, 0x00];

  it("draws a webhook's last 24 hours (attempts stacked, p50 and p95) with a text alternative, and a sparkline per webhook on the list, at 390 px too", async () => {
    // A day of attempts every 15 minutes, answered in about 100 to 300 ms, and an outage from 9
    // to 7 hours ago: 503s and slow timeouts. A second webhook whose every attempt succeeded.
    const random = seededRandom(6);
    const now = Date.now();
    const orders = (await server.request('POST', '/webhooks', { body: { webhook: { name: 'Orders service', targetUrl: receiver.url('/orders'), events: ['ticket.created'] } } })).body.webhook.id as string;
    const billing = (await server.request('POST', '/webhooks', { body: { webhook: { name: 'Billing', targetUrl: receiver.url('/billing'), events: ['ticket.created'] } } })).body.webhook.id as string;
    const day = Array.from({ length: 94 }, (_, i) => now - (i + 1) * 15 * 60_000).flatMap((intervalAt) => {
      const outage = intervalAt > now - 9 * 3600_000 && intervalAt < now - 7 * 3600_000;
      return Array.from({ length: 2 + Math.floor(random() * 8) }, () => {
        const at = new Date(intervalAt + Math.floor(random() * 60_000)).toISOString();
        if (outage && random() < 0.7) return random() < 0.5 ? { at, durationMs: 15_000, statusCode: null } : { at, durationMs: Math.floor(400 + random() * 600), statusCode: 503 };
        return { at, durationMs: Math.floor(90 + random() * random() * 250), statusCode: 200 };
      });
    });
    await insertPastAttempts(server.runtime.database, orders, day);
    const billingDay = day.filter((_, i) => i % 8 === 0).map((a) => ({ ...a, statusCode: 204 }));
    await insertPastAttempts(server.runtime.database, billing, billingDay);
    const failed = day.filter((a) => a.statusCode !== 200).length;

    await signIn();
    // The list: one sparkline per webhook from one request, red where attempts failed.
    const sparklineOf = (name: string) => page.getByRole('row', { name: new RegExp(name) }).locator('.sparkline');
    await sparklineOf('Orders service').locator('canvas').waitFor();
    expect(await sparklineOf('Orders service').getAttribute('aria-label')).toBe(`Attempts in the last 24 hours: ${day.length} attempts, ${failed} failed`);
    expect(await sparklineOf('Billing').getAttribute('aria-label')).toBe(`Attempts in the last 24 hours: ${billingDay.length} attempts, 0 failed`);
    const ordersCanvas = 'tr:has-text("Orders service") .sparkline canvas';
    const billingCanvas = 'tr:has-text("Billing") .sparkline canvas';
    expect(await pixelsOf(ordersCanvas, FAILED)).toBeGreaterThan(0);
    expect(await pixelsOf(ordersCanvas, SUCCEEDED)).toBeGreaterThan(0);
    expect(await pixelsOf(billingCanvas, FAILED)).toBe(0);
    expect(await pixelsOf(billingCanvas, SUCCEEDED)).toBeGreaterThan(0);
    await screenshot('console-webhooks-sparklines');

    // The webhook's page: both charts drawn, and the same figures as text.
    await page.getByRole('link', { name: 'Orders service' }).click();
    await page.locator('.attempts-chart canvas').waitFor();
    await page.locator('.latency-chart canvas').waitFor();
    const activity = (await server.request('GET', `/webhooks/${orders}/activity`)).body.activity;
    const summary = `Attempts over the last 24 hours, per 15 minutes: ${day.length} attempts, ${failed} failed.`;
    expect(await page.locator('.attempts-chart').getAttribute('aria-label')).toBe(summary);
    expect(await page.locator('.attempts-chart + .chart-summary').textContent()).toBe(summary);
    expect(await page.locator('.latency-chart').getAttribute('aria-label')).toMatch(/^Latency over the last 24 hours, per 15 minutes: p95 latency \d+ ms in the last interval with attempts, highest 1\d{4} ms/);
    expect(await pixelsOf('.attempts-chart canvas', SUCCEEDED)).toBeGreaterThan(100);
    expect(await pixelsOf('.attempts-chart canvas', FAILED)).toBeGreaterThan(20);
    expect(await pixelsOf('.latency-chart canvas', P50)).toBeGreaterThan(20);
    expect(await pixelsOf('.latency-chart canvas', P95)).toBeGreaterThan(20);
    await unfold('The intervals as a table');
    const busy = activity.buckets.filter((b: { succeeded: number; failed: number }) => b.succeeded + b.failed > 0);
    expect(await page.locator('.activity-table tbody tr').count()).toBe(busy.length);
    const last = busy.at(-1);
    const lastCells = await page.locator('.activity-table tbody tr').last().locator('td').allTextContents();
    expect(lastCells.slice(1)).toEqual([String(last.succeeded), String(last.failed), `${Math.round(last.p50Ms)} ms`, `${Math.round(last.p95Ms)} ms`]);
    await page.locator('.activity-table summary').click();
    if (SCREENSHOTS) await page.locator('.activity').screenshot({ path: new URL('console-webhook-charts.png', SCREENSHOTS).pathname });

    // At 390 px the charts are one above the other, within the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await expect.poll(async () => (await page.locator('.attempts-chart canvas').boundingBox())!.width).toBeLessThanOrEqual(370);
    for (const chart of ['.attempts-chart canvas', '.latency-chart canvas']) {
      const box = (await page.locator(chart).boundingBox())!;
      expect(box.x + box.width).toBeLessThanOrEqual(390);
    }
    expect(await pageWidth(), (await overflowing(390)).join(', ')).toBeLessThanOrEqual(390);
    expect(await pixelsOf('.attempts-chart canvas', FAILED)).toBeGreaterThan(0);
    await page.locator('.activity').scrollIntoViewIfNeeded();
    if (SCREENSHOTS) await page.locator('.activity').screenshot({ path: new URL('console-phone-webhook-charts.png', SCREENSHOTS).pathname });
    await server.request('DELETE', `/webhooks/${orders}`);
    await server.request('DELETE', `/webhooks/${billing}`);
  }, 60_000);

  it('shows the OpenAPI document in Swagger UI at /docs, loading nothing from elsewhere', async () => {
    const foreign: string[] = [];
    page.on('request', (request) => {
      if (!request.url().startsWith(origin) && !request.url().startsWith('data:')) foreign.push(request.url());
    });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${origin}/docs/`);
    await page.getByRole('heading', { name: /Helpdesk API/ }).waitFor();
    await page.getByText('/helpdesk/api/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver', { exact: true }).waitFor();
    await screenshot('api-docs');
    expect(foreign).toEqual([]);
    expect(errors).toEqual([]);
  }, 60_000);
});
