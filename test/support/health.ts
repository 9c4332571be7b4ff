import { createHealth, type Health } from "../../src/health.js";

/** keymesh's real readiness over a database probe the test switches, re-probed after 10 ms; listening already. */
export function healthWithSwitchableDatabase(
  options: { cachedKeys?: () => number; minCachedKeys?: number } = {},
): {
  health: Health;
  setDatabaseUp(up: boolean): void;
  probes(): number;
} {
  let up = true;
  let probes = 0;
  const health = createHealth({
    probeDatabase: async () => {
      probes++;
      return up;
    },
    cachedKeys: options.cachedKeys ?? (() => 0),
    minCachedKeys: options.minCachedKeys ?? 0,
    maxAgeMs: 10,
  });
  health.listening();
  return {
    health,
    setDatabaseUp: (value) => {
      up = value;
    },
    probes: () => probes,
  };
}
