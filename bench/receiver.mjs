// The benchmark's webhook receiver, in its own process: HTTPS on 127.0.0.1, answers 200 at once.
// Tells its parent (IPC) its port once listening, and its request count when asked. With latency
// tracking on, it also reads each event's `timestamp` and keeps the event-to-receiver latency.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const [certPath, keyPath] = process.argv.slice(2);
let count = 0;
let trackLatency = false;
let latencies = [];
const server = createServer({ cert: readFileSync(certPath), key: readFileSync(keyPath) }, (req, res) => {
  const chunks = trackLatency ? [] : null;
  if (chunks) req.on('data', (chunk) => chunks.push(chunk));
  else req.resume();
  req.on('end', () => {
    count += 1;
    if (chunks) {
      try {
        const { timestamp } = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        latencies.push(Date.now() - Date.parse(timestamp));
      } catch {
        // not an event: counted, not timed
      }
    }
    res.writeHead(200, { 'content-length': '2' });
    res.end('ok');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (message) => {
  if (message === 'count') process.send({ count });
  if (message === 'latency-on' || message === 'latency-off') {
    trackLatency = message === 'latency-on';
    latencies = [];
    process.send({ ok: true });
  }
  if (message === 'latencies') {
    process.send({ latencies });
    latencies = [];
  }
  if (message === 'stop') server.close(() => process.exit(0));
});
