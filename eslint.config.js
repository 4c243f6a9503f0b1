// neostandard: the fastify organisation's style (standard, flat config), with TypeScript.
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      'release/**',
      'bench/results/**',
      '**/generated/**',
      'examples/rails/public/**',
      '.tap/**'
    ]
  }),
  {
    rules: {
      // Configuration values are written with ${NAME} references ('${PORT}'): strings, not template mistakes.
      'no-template-curly-in-string': 'off',
      // `void promise` marks a promise deliberately not awaited (its errors are handled where it was made).
      'no-void': ['error', { allowAsStatement: true }]
    }
  },
  {
    files: ['**/test/**'],
    rules: {
      // Tests poll with `while (flag) await ...`; the flag is changed by the test while the loop awaits.
      'no-unmodified-loop-condition': 'off'
    }
  }
]
