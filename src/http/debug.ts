/**
 * The debug server on http.debug.addr: /debug/health (distribution's
 * format: `{}` when healthy, failing checks by name with 503 otherwise),
 * /livez, /readyz (which, unlike the API's, names the failing checks: this
 * server is not public) and, when enabled, Prometheus metrics.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HealthChecks } from '../health/index.js';
/** The Prometheus text to serve, from this process or aggregated over a cluster's workers. */
export type MetricsSource = () => Promise<{ contentType: string; text: string }>;

export function createDebugHandler(health: HealthChecks, metrics: MetricsSource | undefined, metricsPath: string) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      const data = Buffer.from(JSON.stringify(body));
      res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': data.byteLength, 'Cache-Control': 'no-cache' });
      res.end(data);
    };
    if (path === '/debug/health') return json(health.healthy() ? 200 : 503, health.status());
    if (path === '/livez') return json(200, { status: 'ok' });
    if (path === '/readyz') return health.healthy() ? json(200, { status: 'ok' }) : json(503, { status: 'unhealthy', checks: health.status() });
    if (metrics && path === metricsPath) {
      try {
        const { contentType, text } = await metrics();
        res.writeHead(200, { 'Content-Type': contentType });
        res.end(text);
      } catch (err) {
        // A worker that does not answer must not take the debug server down.
        json(503, { errors: [{ code: 'UNAVAILABLE', message: `metrics unavailable: ${(err as Error).message}` }] });
      }
      return;
    }
    json(404, { errors: [{ code: 'UNSUPPORTED', message: `no such debug endpoint: ${path}` }] });
  };
}
