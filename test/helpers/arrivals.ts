/** The most arrivals in any window of `windowMs`: the busiest window starts at an arrival. */
export function busiestWindow(arrivals: readonly number[], windowMs: number): number {
  const sorted = [...arrivals].sort((a, b) => a - b);
  let busiest = 0;
  for (let i = 0, j = 0; i < sorted.length; i += 1) {
    while (j < sorted.length && sorted[j]! < sorted[i]! + windowMs) j += 1;
    busiest = Math.max(busiest, j - i);
  }
  return busiest;
}
