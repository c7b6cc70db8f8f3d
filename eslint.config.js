// ESLint (flat config): typescript-eslint's type-aware rules over product code and tests.
// `npm run lint` runs it together with the layer rules (.dependency-cruiser.cjs).
// Type information comes from tsconfig.lint.json: sources, tests and servable configs in one
// program; the tests' ../../dist imports resolve to dist/ when it is built, to the sources otherwise.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // What .gitignore ignores: build output, test fixtures and run output.
  { ignores: ['dist/', 'node_modules/', 'native/build/', 'servables/*/[0-9]*/', '.tap/', 'perf/out/', 'tmpexp/', 'test/.tmp/'] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.lint.json', tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // The bug catchers this config is for (all in recommendedTypeChecked; named so that they stay on).
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // tap's t.test() promise never rejects (a failing subtest is reported by tap itself).
          allowForKnownSafePromises: [{ from: 'package', name: 'PromiseWithSubtest', package: '@tapjs/core' }],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      // `let x; const f = () => x?.y(); x = make(f);` is the way to hand a callback a value made after it.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unsafe-argument': 'error',
      '@typescript-eslint/no-unsafe-assignment': 'error',
      '@typescript-eslint/no-unsafe-call': 'error',
      '@typescript-eslint/no-unsafe-member-access': 'error',
      '@typescript-eslint/no-unsafe-return': 'error',
      // Passing a caught value on (`Promise.reject(err)` in a catch) is fine; a literal is not.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // `_`-prefixed parameters are placeholders of a callback's signature.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // With noUncheckedIndexedAccess on (tsconfig.json), a `!` after an indexed access states a
      // checked fact; one the compiler already knows is noise, and this rule removes it.
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // tap subtest callbacks are written `async` uniformly; one without an await is harmless.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Plain JavaScript here is the bin launcher and the tool configs: no type information.
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      parserOptions: { project: null },
      // The Node globals they use (the `globals` package is not a dependency).
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', require: 'readonly', module: 'writable' },
    },
  },
);
