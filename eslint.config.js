import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The layers (DEVELOPERS.md): each imports only from those above it. core is pure (no I/O);
// kernel is the deterministic emulator; host is the machine; cli is on top. The verifier service
// depends on imakit's core only.
const layer = (from, forbidden, extra = []) => ({
  files: [`packages/imakit/src/${from}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          ...forbidden.map((l) => ({
            regex: `^(\\.\\./)+(${l})/`,
            message: `${from}/ may not import from ${l}/ (layering: core < kernel < host < cli)`,
          })),
          ...extra,
        ],
      },
    ],
  },
});
const NO_IO = [
  'fs',
  'fs/promises',
  'child_process',
  'net',
  'tls',
  'http',
  'https',
  'worker_threads',
  'os',
  'process',
  'dgram',
].map((m) => ({
  regex: `^(node:)?${m.replace('/', '\\/')}$`,
  message: 'core/ and kernel/ are pure: no I/O modules',
}));

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/test/fixtures/**',
      '**/test/vectors/**',
      '.cache/**',
      '**/coverage/**',
      '**/build/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  layer('core', ['kernel', 'host', 'cli'], NO_IO),
  layer('kernel', ['host', 'cli'], NO_IO),
  layer('host', ['cli']),
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { module: 'writable', require: 'readonly', process: 'readonly', console: 'readonly' },
    },
  },
  {
    // the CLI launcher is CommonJS (packages/imakit/bin/package.json): no ESM loader at start-up
    files: ['packages/imakit/bin/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { module: 'writable', require: 'readonly', __dirname: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
