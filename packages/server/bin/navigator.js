#!/usr/bin/env node
import { setFlagsFromString } from 'node:v8'

// V8's young generation starts at 1 MiB per semi-space and doubles under allocation, up to 16 MiB. A proxy's
// young garbage is short-lived (per request objects, body chunks), so the young generation is kept at its starting
// size: about 20 MiB less resident memory idle, and dead upload chunks freed sooner (bench/profiles/README.md has the
// figures). Set here, before anything is loaded; the growth factor is read at run time, unlike
// --max-semi-space-size, which only works on the node command line.
setFlagsFromString('--semi-space-growth-factor=1')

await import('../dist/cli.js')
