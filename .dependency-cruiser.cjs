/**
 * Which part of src/ may import which (docs/architecture.md, "Who may import whom"). Run by
 * `npm run depcheck`, which `npm test` runs; a broken rule fails with its name and the comment
 * that says why the rule is there. Type-only imports count: they tie the design too.
 */
const DOMAINS = 'auth|tickets|webhooks|idempotency';

/** `src/<part>/` or the top-level file `src/<part>.ts`. */
const part = (names) => `^src/(${names})(/|\\.ts$)`;

/**
 * The parts of src/, bottom first. A part imports only parts below it, so no two parts can ever
 * import each other, however indirectly.
 */
const LAYERS = [
  'errors',
  'logger',
  'shared',
  'outbound',
  'config',
  'tracing',
  'db',
  'secrets',
  'http',
  'events',
  'delivery',
  'metrics',
  'idempotency',
  'auth',
  'webhooks',
  'tickets',
  'retention',
  'api',
  'runtime',
  'cli',
];

const layerRules = LAYERS.slice(0, -1).map((name, index) => ({
  name: `layer-${name}`,
  severity: 'error',
  comment: `Imports run one way, down the layers of docs/architecture.md: ${name} sits below ${LAYERS.slice(index + 1).join(', ')}, so it imports none of them. Move the shared piece down, or invert the dependency with a port (as delivery/webhook-directory.ts does).`,
  from: { path: part(name) },
  to: { path: part(LAYERS.slice(index + 1).join('|')) },
}));

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-cycles',
      severity: 'error',
      comment:
        'Imports run one way. A cycle (between files or between parts of src/) means neither side can be read, tested or changed without the other; move the shared piece down a layer, or invert the dependency with a port (see delivery/webhook-directory.ts).',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'delivery-engine-imports-no-domain',
      severity: 'error',
      comment:
        'The delivery engine knows nothing of tickets, webhooks, identity, idempotency, HTTP or metrics: it sees webhooks through the WebhookDirectory port (delivery/webhook-directory.ts) and reports through DeliveryObserver (delivery/observer.ts), which the upper layers implement.',
      from: { path: '^src/delivery/' },
      to: { path: [part(DOMAINS), part('api|http|metrics|retention|runtime|cli')] },
    },
    {
      name: 'sql-only-in-repositories',
      severity: 'error',
      comment:
        'Each domain owns its SQL in *.repository.ts (and db/ holds the engine-level helpers): services hold the rules and the transactions, routes and everything else never build a query.',
      from: { path: '^src/', pathNot: ['\\.repository\\.ts$', '^src/db/'] },
      to: { path: '(^|/)node_modules/kysely/' , dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'database-drivers-only-in-db',
      severity: 'error',
      comment: 'The engines are opened, and their differences named (db/capabilities.ts), in db/ only.',
      from: { path: '^src/', pathNot: '^src/db/' },
      to: { path: '(^|/)node_modules/(pg|better-sqlite3)/' },
    },
    {
      name: 'outbound-http-only-in-outbound',
      severity: 'error',
      comment:
        'All outbound traffic goes through src/outbound/http-client.ts: timeouts, no redirects, the private-address guard, a bounded answer. Nothing else opens sockets or resolves names.',
      from: { path: '^src/', pathNot: '^src/outbound/' },
      to: { path: ['(^|/)node_modules/undici/', '^(node:)?(http|https|net|tls|dns|http2)$'] },
    },
    {
      name: 'tickets-and-webhooks-apart',
      severity: 'error',
      comment: 'Tickets reach webhooks only through the outbox and its port: a ticket change never calls the webhooks domain, nor the other way round.',
      from: { path: part('tickets|webhooks') },
      to: { path: part('tickets|webhooks'), pathNot: '^src/$1/' },
    },
    {
      name: 'every-file-in-a-layer',
      severity: 'error',
      comment: 'A new part of src/ takes its place in LAYERS (.dependency-cruiser.cjs) and in docs/architecture.md before anything imports it.',
      from: { path: '^src/' },
      to: { path: '^src/', pathNot: part(LAYERS.join('|')) },
    },
    {
      name: 'src-does-not-import-tests',
      severity: 'error',
      comment: 'The product does not depend on its tests, benchmarks or console sources.',
      from: { path: '^src/' },
      to: { path: '^(test|bench|admin)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
