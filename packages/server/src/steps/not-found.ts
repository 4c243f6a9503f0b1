import { ANSWERED, answer, type RequestContext, type Step } from '@navigator/proxy'

const HEADERS = Object.freeze(['content-type', 'text/plain; charset=utf-8'])

/** The answer for a path nothing serves (also the metrics step's, so that a refused path looks like no path). */
export function answerNotFound (ctx: RequestContext): void {
  answer(ctx, 404, HEADERS, 'Not Found\n')
}

/** The end of the list: nothing above answered, so nothing here serves the path. */
export function notFound (): Step {
  return {
    name: 'not-found',
    run (ctx) {
      answerNotFound(ctx)
      return ANSWERED
    }
  }
}
