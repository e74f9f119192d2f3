/**
 * The console's Server-Sent Events parser (admin/src/sse.ts): what `GET /events/stream` sends,
 * cut into chunks anywhere, gives the same messages as when it arrives whole.
 */
import { describe, expect, it } from 'vitest';
import { SseParser, type SseMessage } from '../../../admin/src/sse.js';

const payload = (n: number) => JSON.stringify({ event: 'ticket.updated', timestamp: `2026-01-01T00:00:0${n}.000Z`, data: { ticket: { id: `tkt_${n}`, version: n } } });

/** As the server writes it: the open comment, two events, a heartbeat, a third event. */
const STREAM = [': stream open\n\n', `id: evt_1\nevent: ticket.updated\ndata: ${payload(1)}\n\n`, `id: evt_2\nevent: ticket.created\ndata: ${payload(2)}\n\n`, ': heartbeat\n\n', `id: evt_3\nevent: ticket.deleted\ndata: ${payload(3)}\n\n`].join('');

const EXPECTED: SseMessage[] = [
  { id: 'evt_1', event: 'ticket.updated', data: payload(1) },
  { id: 'evt_2', event: 'ticket.created', data: payload(2) },
  { id: 'evt_3', event: 'ticket.deleted', data: payload(3) },
];

function parseInChunks(text: string, cuts: number[]): SseMessage[] {
  const parser = new SseParser();
  const messages: SseMessage[] = [];
  let from = 0;
  for (const cut of [...cuts, text.length]) {
    messages.push(...parser.push(text.slice(from, cut)));
    from = cut;
  }
  return messages;
}

describe('SseParser', () => {
  it('reads the stream whole, skipping its comments', () => {
    expect(parseInChunks(STREAM, [])).toEqual(EXPECTED);
  });

  it('gives the same messages whatever the chunks, one character at a time included', () => {
    expect(parseInChunks(STREAM, [...STREAM].map((_, i) => i))).toEqual(EXPECTED);
    // Every single cut point, and pairs of them spread over the text.
    for (let cut = 1; cut < STREAM.length; cut++) expect(parseInChunks(STREAM, [cut])).toEqual(EXPECTED);
    for (let a = 1; a < STREAM.length; a += 7) for (let b = a + 1; b < STREAM.length; b += 13) expect(parseInChunks(STREAM, [a, b])).toEqual(EXPECTED);
  });

  it('holds a message back until its blank line arrives', () => {
    const parser = new SseParser();
    expect(parser.push(`id: evt_1\nevent: ticket.updated\ndata: ${payload(1)}\n`)).toEqual([]);
    expect(parser.push('\n')).toEqual([EXPECTED[0]]);
  });

  it('takes CRLF and CR line ends, a CRLF cut between its two characters counting once', () => {
    const crlf = STREAM.replaceAll('\n', '\r\n');
    expect(parseInChunks(crlf, [])).toEqual(EXPECTED);
    for (let cut = 1; cut < crlf.length; cut++) expect(parseInChunks(crlf, [cut])).toEqual(EXPECTED);
    // A CR ending the text may yet be half of a CRLF: the last blank line counts once more arrives.
    expect(parseInChunks(STREAM.replaceAll('\n', '\r'), [])).toEqual(EXPECTED.slice(0, 2));
    expect(parseInChunks(`${STREAM.replaceAll('\n', '\r')}: heartbeat\r`, [])).toEqual(EXPECTED);
    // A CR then, in the next chunk, a blank LF line: one line end, then an empty line.
    const parser = new SseParser();
    expect(parser.push('data: a\r')).toEqual([]);
    expect(parser.push('\n\n')).toEqual([{ id: null, event: 'message', data: 'a' }]);
  });

  it('joins data lines, keeps the last id for later messages, and drops a block without data', () => {
    const parser = new SseParser();
    expect(parser.push('\uFEFFid: evt_9\nevent: ignored\n\ndata:one\ndata:  two\n\nevent: x\ndata\n\n')).toEqual([
      { id: 'evt_9', event: 'message', data: 'one\n two' },
      { id: 'evt_9', event: 'x', data: '' },
    ]);
  });
});
