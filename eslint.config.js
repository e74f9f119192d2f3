import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/', 'walkthrough/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', performance: 'readonly', AbortSignal: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    // The benchmark scripts are plain Node programs that poll and sample on timers.
    files: ['bench/**/*.mjs'],
    languageOptions: { globals: { fetch: 'readonly', setInterval: 'readonly', clearInterval: 'readonly' } },
  },
  {
    // The reference receiver is a plain Node program, run as it is (examples/reference-receiver/README.md).
    files: ['examples/**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
  {
    // dependency-cruiser reads its rules as a CommonJS module.
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
  },
  {
    // The admin console runs in the browser.
    files: ['admin/src/**/*.{ts,tsx}'],
    languageOptions: { globals: globals.browser },
  },
  {
    // Config is parsed once, in one place.
    files: ['src/**/*.ts'],
    ignores: ['src/config.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration through src/config.ts.' }],
    },
  },
  {
    // All outbound HTTP goes through src/outbound/http-client.ts (timeouts, no redirects, address
    // guard). Imports of undici, http, net, tls and dns are refused by dependency-cruiser
    // (.dependency-cruiser.cjs); the global fetch needs no import, so it is refused here.
    files: ['src/**/*.ts'],
    ignores: ['src/outbound/**'],
    rules: {
      'no-restricted-globals': ['error', { name: 'fetch', message: 'Send outbound HTTP through src/outbound/http-client.ts.' }],
    },
  },
  {
    // SQL lives in repositories and db/ (dependency-cruiser refuses imports of kysely elsewhere);
    // a query builder reached through a Db handle needs no import, so its calls are refused here.
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.repository.ts', 'src/db/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.property.name=/^(selectFrom|insertInto|updateTable|deleteFrom|replaceInto|mergeInto)$/]",
          message: 'Queries belong in a *.repository.ts (or db/): services hold the rules and the transactions, not the SQL.',
        },
      ],
    },
  },
);
