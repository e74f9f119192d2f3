import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { describeResealed, progressPrinter, SEALED_KINDS, type KindCounts } from '../../../src/cli/reseal.js';

function counts(n: number): KindCounts {
  return Object.fromEntries(SEALED_KINDS.map((kind, i) => [kind, n * (i + 1)])) as KindCounts;
}

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { stream, text: () => text };
}

describe('reseal progress', () => {
  it('prints a plain line per batch when stdout is not a terminal', async () => {
    const out = capture();
    const printer = progressPrinter(out.stream, false, 'abcd');
    printer.update({ done: 0, total: 3, resealed: counts(0) });
    printer.update({ done: 2, total: 3, resealed: counts(1) });
    printer.update({ done: 3, total: 3, resealed: counts(2) });
    printer.finish('Done.');
    await new Promise((resolve) => setImmediate(resolve));
    expect(out.text()).toBe(
      'Resealing under key abcd: 3 rows hold values under another key.\n' +
        'Resealed 2 of 3 rows: signing secrets 1, previous signing secrets 2, header values 3, idempotency keys 4\n' +
        'Resealed 3 of 3 rows: signing secrets 2, previous signing secrets 4, header values 6, idempotency keys 8\n' +
        'Done.\n',
    );
  });

  it('redraws one bar in place on a terminal', async () => {
    const out = capture();
    const printer = progressPrinter(out.stream, true, 'abcd');
    printer.update({ done: 0, total: 4, resealed: counts(0) });
    printer.update({ done: 1, total: 4, resealed: counts(1) });
    printer.update({ done: 4, total: 4, resealed: counts(2) });
    await new Promise((resolve) => setImmediate(resolve));
    const [first, ...redraws] = out.text().split('\r\x1b[2K');
    expect(first).toBe('Resealing under key abcd: 4 rows hold values under another key.\n');
    expect(redraws).toEqual([
      `[${'#'.repeat(8)}${'-'.repeat(22)}] 25% 1/4  signing secrets 1, previous signing secrets 2, header values 3, idempotency keys 4`,
      `[${'#'.repeat(30)}] 100% 4/4  signing secrets 2, previous signing secrets 4, header values 6, idempotency keys 8`,
    ]);
    // One line in all: the bar is never followed by a newline of its own, until the last line.
    expect(out.text().split('\n')).toHaveLength(2);
    printer.finish('Done.');
    await new Promise((resolve) => setImmediate(resolve));
    expect(out.text().endsWith(' idempotency keys 8\nDone.\n')).toBe(true);
  });

  it('on a terminal with nothing to move, adds no empty line', async () => {
    const out = capture();
    const printer = progressPrinter(out.stream, true, 'abcd');
    printer.update({ done: 0, total: 0, resealed: counts(0) });
    printer.finish('Done.');
    await new Promise((resolve) => setImmediate(resolve));
    expect(out.text()).toBe('Resealing under key abcd: 0 rows hold values under another key.\nDone.\n');
  });

  it('ends by saying the older keys can go', () => {
    expect(describeResealed(counts(1), 'abcd')).toBe(
      'Done: every sealed value is under key abcd (resealed: signing secrets 1, previous signing secrets 2, header values 3, idempotency keys 4). Keys other than the first can now be dropped from HELPDESK_SECRET_KEY.',
    );
  });
});
