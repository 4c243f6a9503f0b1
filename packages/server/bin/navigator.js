#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8'

// V8's young generation starts at 1 MiB per semi-space and doubles under allocation pressure, up to 16 MiB.
// Start-up (loading modules, compiling the config schema) would grow it for nothing, so it is held at its starting
// size until Navigator listens (about 20 MiB less resident memory idle), then allowed to grow again: a small young
// generation under load costs far more in garbage collection (about 15% of the CPU of a proxied request) than it
// saves. The growth factor is read at run time, unlike --max-semi-space-size (node command line only).
// Figures: bench/profiles/README.md.
setFlagsFromString('--semi-space-growth-factor=1')
try {
  await import('../dist/cli.js')
} finally {
  setFlagsFromString('--semi-space-growth-factor=2')
}
