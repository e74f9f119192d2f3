/**
 * What a test file started and must stop: Helpdesk runtimes (an API with its delivery worker),
 * child processes of the real program, receivers. The helpers that start them track them here;
 * test/helpers/leak-check.ts fails the file that ends with any still open, as graphile-worker's
 * suite fails a test that leaves a worker running: a leftover worker keeps claiming, a leftover
 * server keeps a port, and either makes the next file's results depend on this one's.
 */
const open = new Map<object, string>();

/** Records `resource` as open under a name that says what it is; the returned function closes the record. */
export function trackOpen(resource: object, what: string): () => void {
  open.set(resource, what);
  return () => {
    open.delete(resource);
  };
}

/** What is still open, by name. */
export function stillOpen(): string[] {
  return [...open.values()];
}
