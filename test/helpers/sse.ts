/**
 * A Server-Sent Events client for tests, over a real socket: it keeps every message and comment
 * as it arrives, so a test can wait for what it expects and compare ids, order and data.
 */
import { request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { waitFor } from './wait.js';

export interface SseMessage {
  id: string;
  event: string;
  data: string;
}

export interface SseStream {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  /** The body of an answer that is not a stream (an error). */
  readonly body: string;
  readonly messages: SseMessage[];
  readonly comments: string[];
  /** Set once the server ended the stream or dropped the connection. */
  readonly ended: boolean;
  waitForMessages(count: number, timeoutMs?: number): Promise<SseMessage[]>;
  waitForEnd(timeoutMs?: number): Promise<void>;
  /** Stops reading (the socket is paused): the server's writes pile up in the buffers. */
  pause(): void;
  resume(): void;
  close(): void;
}

export interface SseOptions {
  key: string;
  headers?: Record<string, string>;
}

export function openSse(baseUrl: string, path: string, options: SseOptions): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = request(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${options.key}`, accept: 'text/event-stream', ...options.headers } });
    req.on('error', reject);
    req.on('response', (response) => {
      const messages: SseMessage[] = [];
      const comments: string[] = [];
      let body = '';
      let pending = '';
      let ended = false;
      const socket = response.socket as Socket;
      response.setEncoding('utf8');
      const streaming = (response.headers['content-type'] ?? '').startsWith('text/event-stream');
      response.on('data', (chunk: string) => {
        if (!streaming) {
          body += chunk;
          return;
        }
        pending += chunk;
        let end: number;
        while ((end = pending.indexOf('\n\n')) >= 0) {
          const block = pending.slice(0, end);
          pending = pending.slice(end + 2);
          const message: Partial<SseMessage> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('id: ')) message.id = line.slice(4);
            else if (line.startsWith('event: ')) message.event = line.slice(7);
            else if (line.startsWith('data: ')) message.data = line.slice(6);
          }
          if (message.id !== undefined) messages.push(message as SseMessage);
        }
      });
      const finish = () => {
        ended = true;
      };
      response.on('end', finish);
      response.on('close', finish);
      response.on('error', finish);
      const stream: SseStream = {
        status: response.statusCode ?? 0,
        headers: response.headers,
        get body() {
          return body;
        },
        messages,
        comments,
        get ended() {
          return ended;
        },
        waitForMessages: (count, timeoutMs = 20_000) => waitFor(`${count} stream messages (have ${messages.length})`, () => messages.length >= count && messages, timeoutMs),
        waitForEnd: async (timeoutMs = 20_000) => {
          await waitFor('the end of the stream', () => ended, timeoutMs);
        },
        pause: () => {
          response.pause();
          socket.pause();
        },
        resume: () => {
          socket.resume();
          response.resume();
        },
        close: () => {
          req.destroy();
        },
      };
      if (streaming) resolve(stream);
      else response.on('end', () => resolve(stream));
    });
    req.end();
  });
}
