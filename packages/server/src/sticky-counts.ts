import { COOKIE_REJECTIONS } from '@navigator/sticky-sessions'
import type { CookieRejection, StickyDecision, StickyObserver } from '@navigator/sticky-sessions'

// The sticky-sessions step's decisions and rejected cookies, counted in plain numbers on the request path. The
// metrics count them into their own cells (handed to prom-client at a scrape); the status page reads the same
// numbers, or, without metrics, keeps cells of its own: either way one count per request.

export const STICKY_DECISIONS: readonly StickyDecision[] = ['new', 'own', 'rejected', 'replayed', 'proxied', 'fallback', 're-pinned', 'routed']

/** One counted number: a metrics cell, or a plain one. */
export interface Counted { value: number }

export interface StickyCounts {
  decisions: Record<StickyDecision, number>
  /** Rejected cookies (or sticky headers) by reason; each is also a `rejected` decision. */
  rejected: Record<CookieRejection, number>
}

export interface StickyCounter {
  /** The sticky-sessions step's `onDecision`. */
  readonly observe: StickyObserver
  /** What has been counted so far. */
  counts (): StickyCounts
}

const plain = (): Counted => ({ value: 0 })

/** Counts into the cells made here, once, for each decision and each reason (plain numbers unless given makers). */
export function stickyCounter (decisionCell: (decision: StickyDecision) => Counted = plain, reasonCell: (reason: CookieRejection) => Counted = plain): StickyCounter {
  const byDecision = new Map(STICKY_DECISIONS.map((decision) => [decision, decisionCell(decision)]))
  const byReason = new Map(COOKIE_REJECTIONS.map((reason) => [reason, reasonCell(reason)]))
  return {
    observe: (decision, reason) => {
      (byDecision.get(decision) as Counted).value++
      if (reason !== null) (byReason.get(reason) as Counted).value++
    },
    counts: () => ({
      decisions: Object.fromEntries([...byDecision].map(([decision, cell]) => [decision, cell.value])) as StickyCounts['decisions'],
      rejected: Object.fromEntries([...byReason].map(([reason, cell]) => [reason, cell.value])) as StickyCounts['rejected']
    })
  }
}
