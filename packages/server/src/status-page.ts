import { createHash } from 'node:crypto'
import type { StatusSnapshot } from './status.js'

// The status page: one HTML document with its CSS and script inline (no other request than its JSON twin). The
// server renders it whole, so it reads without JavaScript too; in a browser the script asks for the JSON twin
// every REFRESH_MS and renders it in place, so the page does not flash. Both renderings are the same functions
// (escapeHtml, formatSeconds, asOfText, renderStatus): the browser gets their source, so the page cannot drift from
// what the server renders. They must therefore use nothing but each other and the snapshot. Everything that comes
// from the configuration, the environment or a request (process names, Machine IDs) goes through escapeHtml, and
// the Content-Security-Policy allows only this script and this style, by hash, as a second line of defence.

/** How often the page asks for its JSON twin. */
export const REFRESH_MS = 2_000

/** Text for HTML, element content and quoted attribute values alike. */
export function escapeHtml (value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => '&#' + String(c.charCodeAt(0)) + ';')
}

/** 42 s, 5 m 03 s, 1 h 02 m, 3 d 4 h; a dash for none. */
export function formatSeconds (seconds: number | null): string {
  if (seconds === null) return '–'
  const whole = Math.floor(seconds)
  const days = Math.floor(whole / 86400)
  const hours = Math.floor((whole % 86400) / 3600)
  const minutes = Math.floor((whole % 3600) / 60)
  const rest = whole % 60
  const two = (n: number): string => String(n).padStart(2, '0')
  if (days > 0) return `${days} d ${hours} h`
  if (hours > 0) return `${hours} h ${two(minutes)} m`
  if (minutes > 0) return `${minutes} m ${two(rest)} s`
  return `${rest} s`
}

/** When a snapshot was taken, for the page's footer. */
export function asOfText (iso: string): string {
  return iso.slice(0, 19).replace('T', ' ') + ' UTC'
}

/** The content of the page's <main>, from a snapshot. */
export function renderStatus (s: StatusSnapshot): string {
  const e = escapeHtml
  const dash = '–'
  const shown = (value: unknown): string => value === null || value === undefined ? dash : e(value)
  const states = ['ready', 'running', 'starting', 'stopping', 'stopped', 'backoff']
  const badge = (state: string): string => `<span class="state state-${states.includes(state) ? state : 'other'}">${e(state)}</span>`
  const when = (iso: string): string => e(iso.slice(0, 19).replace('T', ' '))
  const card = (label: string, value: string, id: string): string =>
    `<div class="card"><span class="label">${label}</span><span class="value" id="${id}">${value}</span></div>`
  const m = s.machine

  const processes = s.processes.length === 0
    ? '<p class="empty">No tenants, standalone servers or managed processes in this configuration.</p>'
    : '<table id="processes"><thead><tr><th>Process</th><th>Kind</th><th>Route</th><th>State</th><th class="n">Port</th>' +
      '<th class="n">PID</th><th class="n">Uptime</th><th class="n">Restarts</th><th class="n">In flight</th><th class="n">WebSockets</th></tr></thead><tbody>' +
      s.processes.map((p) => `<tr data-process="${e(p.kind + ':' + p.name)}"><td class="name">${e(p.name)}</td>` +
        `<td>${e(p.kind)}</td><td><code>${e(p.route)}</code></td><td>${badge(p.state)}</td>` +
        `<td class="n">${shown(p.port)}</td><td class="n">${shown(p.pid)}</td><td class="n">${e(formatSeconds(p.uptimeSeconds))}</td>` +
        `<td class="n">${e(p.restarts)}</td><td class="n">${e(p.requestsInFlight)}</td><td class="n">${e(p.webSockets)}</td></tr>`).join('') +
      '</tbody></table>'

  const counts = (id: string, attribute: string, values: Record<string, number>): string =>
    `<table id="${id}" class="counts"><tbody>` +
    Object.keys(values).map((key) => `<tr data-${attribute}="${e(key)}"${values[key] > 0 ? ' class="some"' : ''}><th>${e(key)}</th><td class="n">${e(values[key])}</td></tr>`).join('') +
    '</tbody></table>'

  const fallbacks = s.sticky.fallbacks.length === 0
    ? '<p class="empty" id="fallbacks">None since Navigator started.</p>'
    : '<table id="fallbacks"><thead><tr><th>Time</th><th>Machine</th><th>Answer</th></tr></thead><tbody>' +
      s.sticky.fallbacks.map((f) => `<tr><td>${when(f.at)}</td><td><code>${shown(f.machine)}</code></td>` +
        `<td>${f.decision === 'fallback' ? 'maintenance page' : 're-pinned here'}</td></tr>`).join('') +
      '</tbody></table>'

  return '<header><h1>Navigator <span class="id">' + shown(m.id) + '</span></h1>' +
    `<p class="sub">app <b>${shown(m.app)}</b> · region <b>${shown(m.region)}</b> · Navigator <b>${e(m.version)}</b> · pid <b>${e(m.pid)}</b></p></header>` +
    '<section class="cards">' +
    card('Uptime', e(formatSeconds(m.uptimeSeconds)), 'uptime') +
    card('Listening on', `<code>${shown(m.listen)}</code>`, 'listen') +
    card('Requests in flight', e(m.requestsInFlight), 'in-flight') +
    card('WebSockets', e(m.webSockets), 'websockets') +
    (m.cable.webSockets > 0 || m.cable.streams > 0 ? card('Cable hub', `${e(m.cable.webSockets)} <small>on ${e(m.cable.streams)} streams</small>`, 'cable') : '') +
    '</section>' +
    `<section><h2>Processes</h2>${processes}</section>` +
    '<section class="split"><div><h2>Sticky decisions</h2>' +
    (s.sticky.enabled ? '' : '<p class="note">Sticky sessions are off in this configuration.</p>') +
    counts('decisions', 'decision', s.sticky.decisions) +
    '</div><div><h2>Rejected cookies</h2>' + counts('rejected', 'reason', s.sticky.rejected) +
    `<h2>Recent fallbacks <small>(UTC)</small></h2>${fallbacks}</div></section>`
}

const STYLE = `
:root { color-scheme: light; --ink: #1d2430; --muted: #5f6b7a; --line: #e3e7ee; --bg: #f6f8fb; --card: #fff; --accent: #3a5bd9 }
* { box-sizing: border-box }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg) }
main { max-width: 1100px; margin: 0 auto; padding: 18px 24px 8px }
header h1 { margin: 0; font-size: 22px; font-weight: 650 }
header h1 .id { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; color: var(--accent) }
.sub { margin: 2px 0 14px; color: var(--muted) }
.sub b { color: var(--ink); font-weight: 600 }
h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 18px 0 6px }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 10px }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px }
.card .label { display: block; font-size: 12px; color: var(--muted) }
.card .value { font-size: 18px; font-weight: 600 }
.card code { font-size: 14px }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid var(--line); white-space: nowrap }
thead th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fbfcfe }
tbody tr:last-child th, tbody tr:last-child td { border-bottom: 0 }
.n { text-align: right; font-variant-numeric: tabular-nums }
td.name { font-weight: 600 }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px }
.state { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600; background: #eceff4; color: var(--muted) }
.state-ready, .state-running { background: #dff5e6; color: #17693a }
.state-starting, .state-stopping { background: #fff1d6; color: #8a5a00 }
.state-backoff { background: #fde2e1; color: #a42a22 }
.split { display: grid; grid-template-columns: 1fr 1fr; gap: 16px }
.split h2 { margin-top: 18px }
h2 small { text-transform: none; letter-spacing: 0; font-weight: 400 }
.counts th { font-weight: 500; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px }
.counts tr.some td { font-weight: 700 }
.empty, .note { margin: 4px 0; color: var(--muted) }
.live { color: var(--muted); font-size: 12px; margin: 12px 0 0 }
.live a { color: var(--muted) }
footer { max-width: 1100px; margin: 0 auto; padding: 0 24px 16px }
.stale { color: #a42a22 }
`

/** The part of the script that asks for the JSON twin and renders it in place; plain JavaScript for the browser. */
const LIVE = `
const main = document.getElementById('status')
const live = document.getElementById('live')
const asOf = document.getElementById('as-of')
async function refresh () {
  try {
    const response = await fetch(JSON_PATH, { cache: 'no-store', headers: { accept: 'application/json' } })
    if (!response.ok) throw new Error('HTTP ' + response.status)
    const snapshot = await response.json()
    main.innerHTML = renderStatus(snapshot)
    asOf.textContent = asOfText(snapshot.at)
    live.textContent = 'Live: refreshed every ' + (EVERY / 1000) + ' s'
    live.className = ''
  } catch (err) {
    live.textContent = 'Not refreshed: ' + err.message
    live.className = 'stale'
  }
  setTimeout(refresh, EVERY)
}
setTimeout(refresh, EVERY)
`

/** A value for the script's source: JSON, with nothing that could end the <script> element. */
function scriptLiteral (value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026')
}

function cspHash (text: string): string {
  return `'sha256-${createHash('sha256').update(text).digest('base64')}'`
}

export interface StatusPage {
  /** The whole document for a snapshot. */
  html (snapshot: StatusSnapshot): string
  /** The answer's headers: HTML, never cached, and a policy that runs this page's script and style only. */
  readonly headers: readonly string[]
}

/** The page of a status path: everything but the snapshot is made once, here. */
export function statusPage (jsonPath: string): StatusPage {
  const script = `(() => {\n'use strict'\nconst JSON_PATH = ${scriptLiteral(jsonPath)}\nconst EVERY = ${REFRESH_MS}\n` +
    [escapeHtml, formatSeconds, asOfText, renderStatus].map(String).join('\n') + `\n${LIVE}})()\n`
  const policy = [
    "default-src 'none'", `script-src ${cspHash(script)}`, `style-src ${cspHash(STYLE)}`, "connect-src 'self'",
    'img-src data:', "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"
  ].join('; ')
  const headers = Object.freeze([
    'content-type', 'text/html; charset=utf-8',
    'cache-control', 'no-store',
    'content-security-policy', policy,
    'x-content-type-options', 'nosniff',
    'referrer-policy', 'no-referrer'
  ])
  return {
    headers,
    html: (snapshot) => '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">' +
      '<meta name="viewport" content="width=device-width, initial-scale=1">' +
      `<title>Navigator status · ${escapeHtml(snapshot.machine.id ?? 'this computer')}</title>` +
      // No favicon request: it would go on to an app.
      '<link rel="icon" href="data:,">' +
      `<style>${STYLE}</style></head><body><main id="status">${renderStatus(snapshot)}</main>` +
      `<footer><p class="live"><span id="live">Live: refreshed every ${REFRESH_MS / 1000} s</span> · as of <span id="as-of">${escapeHtml(asOfText(snapshot.at))}</span> · <a href="${escapeHtml(jsonPath)}">JSON</a></p></footer>` +
      `<script>${script}</script></body></html>\n`
  }
}

/** The JSON twin's headers. */
export const STATUS_JSON_HEADERS = Object.freeze([
  'content-type', 'application/json; charset=utf-8',
  'cache-control', 'no-store',
  'x-content-type-options', 'nosniff'
])
