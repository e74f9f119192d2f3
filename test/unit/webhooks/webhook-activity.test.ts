import { describe, expect, it } from 'vitest';
import { activityWindow, parseActivityHours } from '../../../src/webhooks/webhook-activity.service.js';

describe('activity window', () => {
  it('picks the shortest interval that makes at most 96, aligned on the clock, the last one holding now', () => {
    const now = Date.parse('2026-12-04T21:07:31.250Z');
    expect(activityWindow(now, 24)).toEqual({ from: '2026-12-03T21:15:00.000Z', to: '2026-12-04T21:15:00.000Z', intervalSeconds: 900, intervalMinutes: 15, count: 96 });
    expect(activityWindow(now, 1)).toMatchObject({ from: '2026-12-04T20:08:00.000Z', to: '2026-12-04T21:08:00.000Z', intervalSeconds: 60, count: 60 });
    expect(activityWindow(now, 2)).toMatchObject({ intervalSeconds: 300, count: 24 });
    expect(activityWindow(now, 48)).toMatchObject({ intervalSeconds: 1800, count: 96 });
    expect(activityWindow(now, 97)).toMatchObject({ intervalSeconds: 7200, count: 49 });
    expect(activityWindow(now, 168)).toMatchObject({ from: '2026-11-27T22:00:00.000Z', to: '2026-12-04T22:00:00.000Z', intervalSeconds: 7200, count: 84 });
  });

  it('reads hours as a whole number from 1 to 168, 24 when absent, never clamped', () => {
    expect(parseActivityHours(undefined)).toBe(24);
    expect(parseActivityHours('1')).toBe(1);
    expect(parseActivityHours('168')).toBe(168);
    for (const bad of ['0', '169', '2.5', '-1', 'x', '']) {
      expect(() => parseActivityHours(bad)).toThrow(expect.objectContaining({ code: 'validation_failed', details: [{ path: 'hours', message: 'must be a whole number from 1 to 168' }] }));
    }
  });
});
