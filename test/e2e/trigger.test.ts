/**
 * `helpdesk trigger`, the real program against a real `helpdesk serve`, on both databases: each
 * ticket event type is emitted (the feed says so), the ticket id is stdout's one line, and an
 * unknown type, a wrong key and an unreachable server each say so and exit as documented
 * (docs/configuration.md, "listen and trigger").
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TICKET_EVENT_TYPES } from '../../src/events/event-types.js';
import { CLIENT_TEST_TOKEN, readFeed, startServe, stopProcess, type ServeProcess } from '../helpers/client-commands.js';
import { createTestDatabase, type TestDatabase } from '../helpers/databases.js';
import { describeEachDialect } from '../helpers/dialects.js';
import { freePort, spawnHelpdesk } from '../helpers/processes.js';

const KNOWN_TYPES = 'ticket.created, ticket.updated, ticket.deleted, ticket.assignment.changed, ticket.resolved';

describeEachDialect('helpdesk trigger', (dialect) => {
  let database: TestDatabase;
  let server: ServeProcess;

  beforeAll(async () => {
    database = await createTestDatabase(dialect);
    server = await startServe(database);
  }, 60_000);
  afterAll(async () => {
    if (server) await stopProcess(server);
    if (database) await database.drop();
  });

  async function trigger(args: string[], env: Record<string, string> = {}) {
    const run = spawnHelpdesk(['trigger', ...args], env);
    const exit = await run.exited;
    return { exit, stdout: run.stdout(), stderr: run.stderr() };
  }

  it('emits every ticket event type, and prints the ticket id alone on stdout', async () => {
    // Run one after another: the first assignment on a server with only HELPDESK_ADMIN_TOKEN
    // creates the sample assignee, which two at once would both try.
    for (const type of TICKET_EVENT_TYPES) {
      const run = await trigger([type, '--url', server.base], { HELPDESK_API_KEY: CLIENT_TEST_TOKEN });
      expect(run.exit, `${type}: ${run.stderr}`).toEqual({ code: 0, signal: null });
      const ticketId = /^(tkt_[0-9a-f]{32})\n$/.exec(run.stdout)?.[1];
      expect(ticketId, run.stdout).toBeDefined();
      const emitted = (await readFeed(server.base, `&ticketId=${ticketId}`)).map((event) => event.event);
      expect(emitted, type).toContain(type);
      // The events one change makes share its timestamp, so the feed's order among them is not
      // theirs: what trigger says it made is compared as a set.
      const said = /^Made ticket (tkt_\w+) on (\S+), with the events (.+)\n$/.exec(run.stderr);
      expect(said?.slice(1, 3), run.stderr).toEqual([ticketId, server.base]);
      expect(said![3]!.split(', ').sort()).toEqual(emitted.sort());
    }
  });

  it('lists the known types for an unknown or missing one (exit 2), and exits 1 for a wrong key or an unreachable server', async () => {
    const unknown = await trigger(['ticket.exploded', '--url', server.base, '--api-key', CLIENT_TEST_TOKEN]);
    expect(unknown.exit).toEqual({ code: 2, signal: null });
    expect(unknown.stderr).toBe(`helpdesk trigger: "ticket.exploded" is not an event type trigger can make; the types are ${KNOWN_TYPES}\n(run "helpdesk trigger --help" for its options)\n`);
    expect(unknown.stdout).toBe('');

    const missing = await trigger(['--url', server.base, '--api-key', CLIENT_TEST_TOKEN]);
    expect(missing.exit).toEqual({ code: 2, signal: null });
    expect(missing.stderr).toMatch(new RegExp(`^helpdesk trigger: trigger needs an event type: one of ${KNOWN_TYPES.replaceAll('.', '\\.')}\\n`));

    const before = await readFeed(server.base);
    const wrong = await trigger(['ticket.created', '--url', server.base, '--api-key', 'hdk_not-a-key-of-this-server']);
    expect(wrong.exit).toEqual({ code: 1, signal: null });
    expect(wrong.stderr).toBe(`helpdesk trigger: the server at ${server.base} does not accept this API key (401 unauthorized): set --api-key or HELPDESK_API_KEY to an admin key of that server\n`);
    expect(await readFeed(server.base)).toEqual(before);

    const nobody = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await trigger(['ticket.created', '--url', nobody, '--api-key', CLIENT_TEST_TOKEN]);
    expect(unreachable.exit).toEqual({ code: 1, signal: null });
    expect(unreachable.stderr).toMatch(new RegExp(`^helpdesk trigger: cannot reach the Helpdesk server at ${nobody}: connect ECONNREFUSED`));
  });
});
