import type { Metrics } from "./metrics.js";

/** The part of an HTTP/1 or HTTP/2 response a scrape answer uses. */
interface Response {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string): unknown;
}

/** Answers a scrape with the exposition text; a failure to render is a 500 naming no internals. */
export function serveMetrics(metrics: Metrics, res: Response): void {
  metrics.render().then(
    (body) => {
      if (res.headersSent || res.destroyed) return;
      res.writeHead(200, { "content-type": metrics.contentType });
      res.end(body);
    },
    () => {
      if (res.headersSent || res.destroyed) return;
      res.writeHead(500, { "content-type": "text/plain" });
      res.end("metrics could not be rendered\n");
    },
  );
}
