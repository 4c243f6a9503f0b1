/** The subset of pino's (and Fastify's) logger the supervisor uses. */
export interface SupervisorLogger {
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
  error (obj: object, msg?: string): void
  debug (obj: object, msg?: string): void
  child (bindings: Record<string, unknown>): SupervisorLogger
}
