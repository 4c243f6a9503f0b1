import { test } from 'tap'
import { referencedNames, substitute, tenantLookup } from '../src/substitute.js'
import { parseConfig } from '../src/load.js'
import { ConfigError } from '../src/problems.js'

test('substitute replaces resolved names and lists the missing ones', async (t) => {
  const env: Record<string, string> = { A: '1', B: 'two' }
  t.same(substitute('x${A}-${B}${A}', (name) => env[name]), { value: 'x1-two1', missing: [] })
  t.same(substitute('${A}${C}${C}${D}', (name) => env[name]), { value: '1${C}${C}${D}', missing: ['C', 'D'] })
  t.same(substitute('$A ${ A} $$ ${1X}', (name) => env[name]), { value: '$A ${ A} $$ ${1X}', missing: [] }, 'only ${NAME} is a reference')
  t.same(referencedNames('${a}/${b}/${a}'), ['a', 'b'])
})

test('a tenant lookup resolves var first, then PORT, then the environment', async (t) => {
  const lookup = tenantLookup({ var: { PORT: 'var-port', x: 'from-var', HOME: 'var-home' } }, 4001, { HOME: '/root', ONLY_ENV: 'e' })
  t.equal(lookup('x'), 'from-var')
  t.equal(lookup('PORT'), 'var-port')
  t.equal(lookup('HOME'), 'var-home')
  t.equal(lookup('ONLY_ENV'), 'e')
  t.equal(lookup('missing'), undefined)
  t.equal(tenantLookup({ var: {} }, 4001, { PORT: '1' })('PORT'), '4001')
  t.equal(tenantLookup({ var: {} }, 4001, Object.create({ INHERITED: 'x' }))('INHERITED'), undefined)
})

test('strings are substituted from the environment at load time', async (t) => {
  const config = parseConfig(
    'server:\n  listen: "${PORT_NUMBER}"\nroutes:\n  fly:\n    sticky_sessions:\n      secret: ["${NEW}", "${OLD}"]\n' +
    'applications:\n  standalone_servers:\n    - name: cable\n      match_path: /cable\n      command: ${CMD}\n      port: 4001\n      env: { URL: "redis://${HOST}" }\n',
    { env: { PORT_NUMBER: '8080', NEW: 'n', OLD: 'o', CMD: 'bundle', HOST: 'h' } }
  )
  t.equal(config.server.listen.port, 8080)
  t.same(config.routes.fly.stickySessions.secrets, ['n', 'o'])
  t.equal(config.applications.standaloneServers[0].command, 'bundle')
  t.same(config.applications.standaloneServers[0].env, { URL: 'redis://h' })
})

test('tenant command, args and env keep their references when every name resolves', async (t) => {
  const config = parseConfig([
    'applications:',
    '  env: { DB: "db/${tenant_id}.sqlite3", HOME_DIR: "${HOME}" }',
    '  tenants:',
    '    - name: a',
    '      path: /a',
    '      var: { tenant_id: ta, label: "${LABEL}" }',
    '      command: "${RUBY}"',
    '      args: [-p, "${PORT}", "${tenant_id}"]',
    '      env: { NAME: "${label}" }'
  ].join('\n'), { env: { HOME: '/home', LABEL: 'Tenant A', RUBY: 'ruby' } })
  const tenant = config.applications.tenants[0]
  t.same(config.applications.env, { DB: 'db/${tenant_id}.sqlite3', HOME_DIR: '${HOME}' })
  t.equal(tenant.command, '${RUBY}')
  t.same(tenant.args, ['-p', '${PORT}', '${tenant_id}'])
  t.same(tenant.env, { NAME: '${label}' })
  t.same(tenant.var, { tenant_id: 'ta', label: 'Tenant A' }, 'var values are substituted from the environment')
})

test('an unresolved name is a problem at the string that uses it', async (t) => {
  const error = t.throws(() => parseConfig([
    'server:',
    '  health_check: "/${CHECK}"',
    'applications:',
    '  env: { DB: "db/${tenant_id}" }',
    '  tenants:',
    '    - name: a',
    '      path: /a',
    '      var: { tenant_id: ta }',
    '    - name: b',
    '      path: /b',
    '      env: { X: "${nowhere}" }'
  ].join('\n'), { file: 'x.yml', env: {} })) as ConfigError
  t.type(error, ConfigError)
  t.same(error.problems.map((p) => [p.path, p.line, p.column]), [
    ['server.health_check', 2, 17],
    ['applications.env.DB', 4, 14],
    ['applications.tenants.1.env.X', 11, 17]
  ])
  t.match(error.problems[0].message, /\$\{CHECK\} is not set in the environment/)
  t.match(error.problems[1].message, /\$\{tenant_id\} is not defined for tenant b\b/)
  t.match(error.problems[2].message, /\$\{nowhere\}/)
})

test('${NAME:-default} takes the default when NAME is unset or empty, and NAME otherwise', async (t) => {
  const env: Record<string, string> = { SET: 'value', EMPTY: '' }
  const lookup = (name: string): string | undefined => env[name]
  t.same(substitute('${SET:-d}|${EMPTY:-d}|${UNSET:-d}', lookup), { value: 'value|d|d', missing: [] })
  t.same(substitute('${UNSET:-}x${UNSET:-a:b/c-d}', lookup), { value: 'xa:b/c-d', missing: [] }, 'an empty default, and any text without }')
  t.same(substitute('${UNSET:-${SET}}', lookup), { value: '${SET}', missing: [] }, 'a default ends at the first } and is not substituted again')
  t.same(substitute('${UNSET-d} ${UNSET:d}', lookup), { value: '${UNSET-d} ${UNSET:d}', missing: [] }, 'only :- starts a default')
  t.same(referencedNames('${a}/${b:-x}/${a}'), ['a', 'b:-x'], 'a reference with a default is listed whole')
})

test('a default works wherever the file is substituted at load time, tenant var included', async (t) => {
  const text = [
    'server:',
    '  listen: "127.0.0.1:${NAVIGATOR_PORT:-3000}"',
    'applications:',
    '  tenants:',
    '    - name: a',
    '      path: /a',
    '      var: { data: "${NAVIGATOR_DATA:-db}" }',
    '      env: { DATABASE_URL: "sqlite3:${data}/a.sqlite3" }'
  ].join('\n')
  const plain = parseConfig(text, { env: {} })
  t.equal(plain.server.listen.port, 3000)
  t.same(plain.applications.tenants[0].var, { data: 'db' })
  const edge = parseConfig(text, { env: { NAVIGATOR_PORT: '20010', NAVIGATOR_DATA: '/tmp/m1' } })
  t.equal(edge.server.listen.port, 20010)
  t.same(edge.applications.tenants[0].var, { data: '/tmp/m1' })
})

test('a default in a value resolved when the tenant starts is reported, since it would not resolve there', async (t) => {
  const error = t.throws(() => parseConfig([
    'applications:',
    '  tenants:',
    '    - name: a',
    '      path: /a',
    '      env: { DATA: "${NAVIGATOR_DATA:-db}" }'
  ].join('\n'), { env: { NAVIGATOR_DATA: '/tmp/m1' } })) as ConfigError
  t.type(error, ConfigError)
  t.match(error.problems[0].message, /\$\{NAVIGATOR_DATA:-db\} is not in this tenant's var/)
})
