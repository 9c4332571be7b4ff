/** Collects shutdown steps and runs them once, in reverse order of registration. */
export interface Teardown {
  add(name: string, step: () => Promise<void> | void): void;
  run(): Promise<void>;
}

/** Creates a teardown list; a failing step is reported and the rest still run. */
export function createTeardown(onError: (name: string, error: unknown) => void = () => {}): Teardown {
  const steps: { name: string; step: () => Promise<void> | void }[] = [];
  let running: Promise<void> | undefined;
  return {
    add(name, step) {
      steps.push({ name, step });
    },
    run() {
      running ??= (async () => {
        for (const { name, step } of steps.reverse()) {
          try {
            await step();
          } catch (error) {
            onError(name, error);
          }
        }
      })();
      return running;
    },
  };
}
