import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'data/', 'coverage/'] },
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
    // All outbound HTTP goes through src/outbound/http-client.ts (timeouts, no redirects, address guard).
    files: ['src/**/*.ts'],
    ignores: ['src/outbound/**'],
    rules: {
      'no-restricted-imports': ['error', { paths: ['undici', 'http', 'https', 'net', 'tls', 'dns', 'node:http', 'node:https', 'node:net', 'node:tls', 'node:dns'].map((name) => ({
        name,
        message: 'Send outbound traffic through src/outbound/http-client.ts (timeouts, no redirects, address guard).',
      })) }],
      'no-restricted-globals': ['error', { name: 'fetch', message: 'Send outbound HTTP through src/outbound/http-client.ts.' }],
    },
  },
);
