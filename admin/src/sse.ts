/**
 * Server-Sent Events parsed from text as it arrives, the way an EventSource parses them
 * (the WHATWG "event stream interpretation"). The console reads `GET /events/stream` with
 * fetch() rather than EventSource, since an EventSource cannot send the Authorization header;
 * so it parses the stream itself. Chunks split a message, a line, or a CRLF anywhere.
 * This file imports nothing and touches no browser API, so the unit tests run it in Node.
 */

export interface SseMessage {
  /** The last `id:` seen so far (it carries over to later messages, as in an EventSource). */
  id: string | null;
  /** `message` when the block named no `event:`. */
  event: string;
  data: string;
}

export class SseParser {
  private pending = '';
  private dataLines: string[] = [];
  private eventName = '';
  private lastId: string | null = null;
  private started = false;

  /** Feeds decoded text; returns the messages it completed, in order. */
  push(text: string): SseMessage[] {
    let input = this.pending + text;
    // A byte-order mark may open the stream, and only there.
    if (!this.started && input.length > 0) {
      this.started = true;
      if (input.charCodeAt(0) === 0xfeff) input = input.slice(1);
    }
    const messages: SseMessage[] = [];
    let start = 0;
    for (let at = 0; at < input.length; at++) {
      const char = input[at];
      if (char !== '\n' && char !== '\r') continue;
      // A CR at the very end may be the first half of a CRLF that the next chunk completes.
      if (char === '\r' && at === input.length - 1) break;
      this.line(input.slice(start, at), messages);
      if (char === '\r' && input[at + 1] === '\n') at++;
      start = at + 1;
    }
    this.pending = input.slice(start);
    return messages;
  }

  private line(line: string, messages: SseMessage[]): void {
    if (line === '') {
      this.dispatch(messages);
      return;
    }
    // Comments (`: stream open`, `: heartbeat`) only keep the connection alive.
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.dataLines.push(value);
    else if (field === 'event') this.eventName = value;
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
    // `retry:` and unknown fields are ignored: the console keeps its own reconnection delays.
  }

  private dispatch(messages: SseMessage[]): void {
    if (this.dataLines.length > 0) messages.push({ id: this.lastId, event: this.eventName || 'message', data: this.dataLines.join('\n') });
    this.dataLines = [];
    this.eventName = '';
  }
}
