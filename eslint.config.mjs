// ESLint over src/, test/ and bench/ (`make lint`, run by `make test`): the recommended rules of
// ESLint and typescript-eslint, without type information (fast; tsc checks the types). No
// formatting rules: the code keeps its style (2 spaces, single quotes, ~120 columns) by hand.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // Generated code (src/datapath/abi.gen.ts) is checked against its generator, not linted.
  { ignores: ['dist/', 'build/', 'node_modules/', 'addon/build/', '**/*.gen.ts'] },
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_` marks what is unused on purpose (`for (const _ of keys) n++`, a skipped argument),
      // as tsc's noUnusedLocals/noUnusedParameters already accept.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    // Tests and benchmarks load modules by computed paths (a generated file, the live module
    // objects a benchmark wraps to time them): require() is their tool. src/ imports.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
