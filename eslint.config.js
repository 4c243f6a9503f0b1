// neostandard: the fastify organisation's style (standard, flat config), with TypeScript.
import neostandard from 'neostandard'

export default neostandard({
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
})
