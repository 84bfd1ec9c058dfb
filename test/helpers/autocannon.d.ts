// The small part of autocannon's programmatic API the tests use (the package ships no types).
declare module 'autocannon' {
  interface Request {
    method?: string
    path?: string
    headers?: Record<string, string | undefined>
    body?: string
    setupRequest?: (req: Record<string, unknown>, context: Record<string, unknown>) => Record<string, unknown>
    onResponse?: (status: number, body: string, context: Record<string, unknown>) => void
  }
  interface Options {
    url: string
    connections?: number
    amount?: number
    duration?: number
    requests?: Request[]
  }
  interface Result {
    non2xx: number
    errors: number
    timeouts: number
    latency: { max: number; p99: number; p50: number; average: number }
    requests: { total: number; average: number }
  }
  function autocannon(options: Options): Promise<Result>
  export default autocannon
}
