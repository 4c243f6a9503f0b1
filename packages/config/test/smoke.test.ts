import { test } from 'tap'
import * as mod from '../src/index.js'

test('module loads', async (t) => {
  t.type(mod, 'object')
})
