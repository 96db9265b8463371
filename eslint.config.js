// Lint: TypeScript syntax plus the layer rule of ARCHITECTURE.md
// (app -> {protocols, workers} -> services -> {store, mime} -> core; only store/ touches SQL drivers).
import tseslint from 'typescript-eslint';

const layer = (name) => ({ group: [`**/${name}/*`, `**/${name}/**`, `../${name}/*`, `./${name}/*`], message: `this layer may not import ${name}/ (see ARCHITECTURE.md)` });
const drivers = { group: ['kysely', 'kysely/*', 'better-sqlite3', 'pg'], message: 'only src/store may import the SQL layer' };
const rule = (...groups) => ['error', { patterns: groups }];

export default [
  { ignores: ['node_modules/**', 'data/**', '.cache/**'] },
  ...tseslint.configs.recommended.map((c) => ({ ...c, files: ['**/*.ts'] })),
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  { files: ['src/core/**/*.ts'], rules: { 'no-restricted-imports': rule(layer('config'), layer('mime'), layer('store'), layer('services'), layer('workers'), layer('protocols'), layer('app'), layer('cli'), drivers) } },
  { files: ['src/config/**/*.ts'], rules: { 'no-restricted-imports': rule(layer('mime'), layer('store'), layer('services'), layer('workers'), layer('protocols'), layer('app'), layer('cli'), drivers) } },
  { files: ['src/mime/**/*.ts'], rules: { 'no-restricted-imports': rule(layer('store'), layer('services'), layer('workers'), layer('protocols'), layer('app'), layer('cli'), drivers) } },
  { files: ['src/store/**/*.ts'], rules: { 'no-restricted-imports': rule(layer('mime'), layer('services'), layer('workers'), layer('protocols'), layer('app'), layer('cli')) } },
  { files: ['src/services/**/*.ts'], rules: { 'no-restricted-imports': rule(layer('workers'), layer('protocols'), layer('app'), layer('cli'), drivers) } },
  { files: ['src/workers/**/*.ts'], rules: { 'no-restricted-imports': rule(layer('protocols'), layer('app'), layer('cli'), drivers) } },
  { files: ['src/protocols/**/*.ts'], rules: { 'no-restricted-imports': rule(layer('workers'), layer('app'), layer('cli'), drivers) } },
  { files: ['src/app/**/*.ts', 'src/cli/**/*.ts'], rules: { 'no-restricted-imports': rule(drivers) } },
];
