/** Bundles the web console into `outdir` (dist/console by default) and returns that directory. */
export function buildConsole(outdir?: string): string;
