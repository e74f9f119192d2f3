import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';

describe('the logger', () => {
  it('redacts the Authorization header, keys, tokens and every kind of signing secret', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger('info', destination);
    logger.info(
      {
        req: { headers: { authorization: 'Bearer hdk_secret-key' } },
        headers: { authorization: 'Bearer hdk_other' },
        signingSecret: 'whsec_one',
        webhook: { signingSecret: 'whsec_two', key: 'hdk_three' },
        signingSecrets: ['whsec_four'],
        target: { signingSecrets: ['whsec_five'] },
        secret: 'whsec_six',
        row: { secret: 'whsec_seven' },
        apiKey: { key: 'hdk_eight' },
        config: { adminToken: 'token-nine' },
        deliveryId: 'msg_visible',
      },
      'sensitive',
    );
    const logged = lines.join('');
    for (const secret of ['hdk_secret-key', 'hdk_other', 'whsec_one', 'whsec_two', 'hdk_three', 'whsec_four', 'whsec_five', 'whsec_six', 'whsec_seven', 'hdk_eight', 'token-nine']) {
      expect(logged).not.toContain(secret);
    }
    const line = JSON.parse(logged);
    expect(line.req.headers.authorization).toBe('[redacted]');
    expect(line.webhook.signingSecret).toBe('[redacted]');
    expect(line.deliveryId).toBe('msg_visible');
  });
});
