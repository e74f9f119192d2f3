// raw limit: an undici Pool POSTing the same 1 KB signed payload straight to the receiver with 64
// in flight. The ceiling of deliveries per second on this machine, the baseline of every ratio.
import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import { postSigned } from '../lib.mjs';

export async function rawLimit(ctx, { seconds = ctx.seconds, inFlight = 64 } = {}) {
  const pool = new Pool(ctx.receiver.origin, { connections: inFlight, connect: { ca: ctx.tls.caPem } });
  const body = JSON.stringify({ event: 'ticket.created', timestamp: new Date().toISOString(), data: { padding: 'x'.repeat(900) } });
  const key = randomBytes(32);
  let sent = 0;
  const deadline = performance.now() + seconds * 1000;
  const loop = async () => {
    while (performance.now() < deadline) {
      const status = await postSigned(pool, key, `msg_${randomBytes(12).toString('hex')}`, body);
      if (status === 200) sent += 1;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: inFlight }, loop));
  const elapsed = (performance.now() - started) / 1000;
  await pool.close();
  return sent / elapsed;
}
