import { test } from 'tap'
import { textLine, textValue } from '../src/text-log.js'

// The text log format, line by line: what grep and a person see.

test('a line is time, level, message, then key=value pairs in the order they were logged', async (t) => {
  const time = Date.UTC(2024, 8, 30, 12, 0, 0)
  t.equal(textLine(JSON.stringify({ level: 20, time, msg: 'Sticky session cookie found', machine: 'fly-machine-abc123' })),
    '2024-09-30T12:00:00.000Z DEBUG Sticky session cookie found machine=fly-machine-abc123\n')
  t.equal(textLine(JSON.stringify({ level: 30, time, msg: 'tenant ready', process: 'app', port: 4001 })),
    '2024-09-30T12:00:00.000Z INFO tenant ready process=app port=4001\n')
  t.equal(textLine(JSON.stringify({ level: 50, time, msg: 'x' })).split(' ')[1], 'ERROR')
})

test('values are quoted only when they must be, so a value never runs into the next pair', async (t) => {
  t.equal(textValue('plain-value_1.2:3/4'), 'plain-value_1.2:3/4')
  t.equal(textValue(''), '""')
  t.equal(textValue('two words'), '"two words"')
  t.equal(textValue('a=b'), '"a=b"')
  t.equal(textValue('say "hi"'), '"say \\"hi\\""')
  t.equal(textValue('line\nbreak'), '"line\\nbreak"', 'a line break in a value cannot start a forged line')
  t.equal(textValue(42), '42')
  t.equal(textValue(false), 'false')
  t.equal(textValue(null), 'null')
  t.equal(textValue(['a', 'b']), '"[\\"a\\",\\"b\\"]"', 'a list or an object is JSON, quoted like any value with quotes')
  t.equal(textValue({ a: 1 }), '"{\\"a\\":1}"')
  t.equal(textValue({ type: 'Error', message: 'spawn ENOENT', stack: 'Error: spawn ENOENT\n    at x' }), '"spawn ENOENT"', 'an error shows its message, not its stack')
})

test('a line that is not JSON passes through whole', async (t) => {
  t.equal(textLine('not json'), 'not json\n')
})
