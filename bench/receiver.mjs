// The benchmark's webhook receiver, in its own process: HTTPS on 127.0.0.1, answers 200 at once.
// Tells its parent (IPC) its port once listening, and its request count when asked.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const [certPath, keyPath] = process.argv.slice(2);
let count = 0;
const server = createServer({ cert: readFileSync(certPath), key: readFileSync(keyPath) }, (req, res) => {
  req.resume();
  req.on('end', () => {
    count += 1;
    res.writeHead(200, { 'content-length': '2' });
    res.end('ok');
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (message) => {
  if (message === 'count') process.send({ count });
  if (message === 'stop') server.close(() => process.exit(0));
});
