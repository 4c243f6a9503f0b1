import { test } from 'tap'
import { Value } from 'typebox/value'
import { parse } from 'yaml'
import { readFile } from 'node:fs/promises'
import { configJsonSchema } from '../src/json-schema.js'

const FULL_EXAMPLE = new URL('./fixtures/full-example.yml', import.meta.url)

test('the JSON Schema is plain JSON draft 2020-12 with snake_case keys and no private keywords', async (t) => {
  const schema = configJsonSchema() as any
  t.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema')
  t.same(JSON.parse(JSON.stringify(schema)), schema, 'survives a JSON round trip')
  t.notMatch(JSON.stringify(schema), /errorMessage/)
  t.same(Object.keys(schema.properties), ['server', 'routes', 'applications', 'logging', 'managed_processes', 'auth', 'maintenance', 'hooks', 'cable'])
  const sticky = schema.properties.routes.properties.fly.properties.sticky_sessions
  t.equal(sticky.additionalProperties, false)
  t.equal(sticky.properties.cookie_name.default, '_navigator_machine')
  t.equal(sticky.properties.cookie_max_age.default, '24h')
  t.ok(sticky.properties.cookie_httponly.description)
  t.same(schema.properties.applications.properties.tenants.items.required, ['path'], 'the name of a tenant is derived from its path when absent')
})

test('configJsonSchema returns a fresh object each time', async (t) => {
  const first = configJsonSchema() as any
  first.properties.server = null
  t.not((configJsonSchema() as any).properties.server, null)
})

test('the JSON Schema accepts the full example and rejects an unknown key and a bad duration', async (t) => {
  const schema = configJsonSchema()
  const example = parse(await readFile(FULL_EXAMPLE, 'utf8'))
  t.ok(Value.Check(schema as any, example), 'the example using every section of the format')
  t.notOk(Value.Check(schema as any, { server: { lsiten: 3000 } }), 'unknown key')
  t.notOk(Value.Check(schema as any, { server: { shutdown_timeout: '30 seconds' } }), 'bad duration')
  t.ok(Value.Check(schema as any, { applications: { idle_timeout: 0 } }), 'the number 0 is a duration')
  t.notOk(Value.Check(schema as any, { routes: { fly: { sticky_sessions: { cookie_samesite: 'sometimes' } } } }), 'bad samesite')
  t.ok(Value.Check(schema as any, { routes: { fly: { sticky_sessions: { cookie_samesite: 'strict' } } } }), 'samesite in any case')
})
