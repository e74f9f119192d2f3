/**
 * A tiny authoritative DNS server on UDP 127.0.0.1, for the DNS-rebinding test: it answers every
 * A query for any name with the addresses the test picks for that query (by its number), with
 * TTL 0 so that no resolver may cache them, and records what it was asked and what it said.
 * Queries of other types get an empty answer. Only what a stub resolver sends is understood:
 * one question, no compression in it.
 */
import { createSocket, type RemoteInfo } from 'node:dgram';
import { Resolver, type LookupAddress } from 'node:dns';
import type { ResolveAll } from '../../src/outbound/http-client.js';

export interface DnsQuery {
  name: string;
  /** 1 for A, 28 for AAAA, ... */
  type: number;
  /** The addresses answered (empty for a type other than A). */
  answer: string[];
}

export interface DnsServer {
  /** `127.0.0.1:<port>`, for Resolver.setServers. */
  readonly address: string;
  readonly queries: DnsQuery[];
  /** A lookup function (dns.lookup with `all: true`) that asks this server, and only it. */
  resolveAll(): ResolveAll;
  close(): Promise<void>;
}

const TYPE_A = 1;

/** `answerFor(n)`: the IPv4 addresses to answer the n-th A query with (0-based). */
export async function startDnsServer(answerFor: (index: number, name: string) => string[]): Promise<DnsServer> {
  const socket = createSocket('udp4');
  const queries: DnsQuery[] = [];
  let aQueries = 0;

  const answer = (message: Buffer, peer: RemoteInfo) => {
    if (message.length < 12) return;
    let offset = 12;
    const labels: string[] = [];
    while (offset < message.length && message[offset] !== 0) {
      const length = message[offset]!;
      labels.push(message.subarray(offset + 1, offset + 1 + length).toString('ascii'));
      offset += length + 1;
    }
    offset += 1; // the root label
    if (offset + 4 > message.length) return;
    const type = message.readUInt16BE(offset);
    const question = message.subarray(12, offset + 4);
    const name = labels.join('.');
    const addresses = type === TYPE_A ? answerFor(aQueries++, name) : [];
    queries.push({ name, type, answer: addresses });

    const header = Buffer.alloc(12);
    header.writeUInt16BE(message.readUInt16BE(0), 0); // the query's id
    header.writeUInt16BE(0x8400 | (message.readUInt16BE(2) & 0x0100), 2); // response, authoritative, RD copied, NOERROR
    header.writeUInt16BE(1, 4); // one question
    header.writeUInt16BE(addresses.length, 6);
    const records = addresses.map((address) => {
      const record = Buffer.alloc(16);
      record.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
      record.writeUInt16BE(TYPE_A, 2);
      record.writeUInt16BE(1, 4); // class IN
      record.writeUInt32BE(0, 6); // TTL 0: never cached
      record.writeUInt16BE(4, 10);
      address.split('.').forEach((octet, i) => record.writeUInt8(Number(octet), 12 + i));
      return record;
    });
    socket.send(Buffer.concat([header, question, ...records]), peer.port, peer.address);
  };

  socket.on('message', answer);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const address = `127.0.0.1:${socket.address().port}`;
  const resolvers: Resolver[] = [];

  return {
    address,
    queries,
    resolveAll() {
      const resolver = new Resolver({ timeout: 2_000, tries: 1 });
      resolver.setServers([address]);
      resolvers.push(resolver);
      // resolve4 asks the DNS server every time (no hosts file, no cache at TTL 0); its answer
      // becomes the callback shape of dns.lookup with `all: true`.
      return (hostname, _options, callback) => {
        resolver.resolve4(hostname, (error, addresses) => {
          if (error) return callback(error, []);
          callback(null, addresses.map((a): LookupAddress => ({ address: a, family: 4 })));
        });
      };
    },
    async close() {
      for (const resolver of resolvers) resolver.cancel();
      await new Promise<void>((resolve) => socket.close(() => resolve()));
    },
  };
}
