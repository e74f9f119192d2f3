/** Checks a delivery's Standard Webhooks signature the way a receiver would. */
import { Webhook as StandardWebhook } from 'standardwebhooks';
import type { ReceivedRequest } from './receiver.js';

/** Whether the request verifies with the secret, through the Standard Webhooks library. */
export function verifies(secret: string, request: ReceivedRequest): boolean {
  try {
    new StandardWebhook(secret).verify(request.body, {
      'webhook-id': request.headers['webhook-id']!,
      'webhook-timestamp': request.headers['webhook-timestamp']!,
      'webhook-signature': request.headers['webhook-signature']!,
    });
    return true;
  } catch {
    return false;
  }
}
