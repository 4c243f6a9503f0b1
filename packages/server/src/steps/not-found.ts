import { ANSWERED, answer, type Step } from '@navigator/proxy'

const HEADERS = Object.freeze(['content-type', 'text/plain; charset=utf-8'])

/** The end of the list: nothing above answered, so nothing here serves the path. */
export function notFound (): Step {
  return {
    name: 'not-found',
    run (ctx) {
      answer(ctx, 404, HEADERS, 'Not Found\n')
      return ANSWERED
    }
  }
}
