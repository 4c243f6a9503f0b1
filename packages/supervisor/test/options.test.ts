import { test } from 'tap'
import { Supervisor } from '../src/index.js'
import { recordingLogger } from './helpers.js'

test('applications without the lists of tenants and standalone servers are refused with a clear error, not a TypeError', async (t) => {
  const { logger } = recordingLogger()
  for (const applications of [{}, { tenants: [] }, { standaloneServers: [] }, { tenants: {}, standaloneServers: [] }, null]) {
    t.throws(() => new Supervisor({ applications: applications as never, logger }), {
      code: 'NAV_SUPERVISOR_INVALID_OPTION',
      message: /applications must be the normalised ApplicationsConfig/
    }, JSON.stringify(applications))
  }
})
