import type { HealthSource } from "../health-source.js";

// The parts of node's HTTP/1 and HTTP/2 (compatibility API) requests and responses the probes use.
type Request = { url?: string };
type Response = {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body: string): unknown;
};

function plain(res: Response, status: number, body: string): void {
  res.statusCode = status;
  res.setHeader("content-type", "text/plain; charset=utf-8");
  res.setHeader("cache-control", "no-store");
  res.end(`${body}\n`);
}

/**
 * The HTTP probes. `/livez`: the process is alive, which it shows by answering at all (a blocked event loop answers
 * nothing, and the probe's timeout fails it); it never depends on the database, so that a database blip does not
 * restart every instance and throw away their caches. `/readyz`: whether to send traffic here now (see
 * `HealthSource`); 503 with the reason otherwise. `/healthz` is `/readyz` under its older name.
 * Returns false for any other path, which the caller routes on.
 */
export function createProbeHandler(health: HealthSource): (req: Request, res: Response) => boolean {
  return (req, res) => {
    const url = req.url ?? "";
    const path = url.includes("?") ? url.slice(0, url.indexOf("?")) : url;
    if (path === "/livez") {
      plain(res, 200, "ok");
      return true;
    }
    if (path !== "/readyz" && path !== "/healthz") return false;
    health.refresh().then(
      () => plain(res, health.status("") === "SERVING" ? 200 : 503, health.reason()),
      () => plain(res, 503, "not ready: readiness could not be evaluated"),
    );
    return true;
  };
}
