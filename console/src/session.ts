/**
 * The signed-in key lives in this tab's sessionStorage only: never localStorage (it would outlive the tab) and never a
 * cookie (a browser would send it with requests the console did not make). Closing the tab or signing out drops it.
 */
const SLOT = "keymesh.console.key";

export function readKey(): string | undefined {
  return sessionStorage.getItem(SLOT) ?? undefined;
}

export function storeKey(key: string): void {
  sessionStorage.setItem(SLOT, key);
}

export function clearKey(): void {
  sessionStorage.removeItem(SLOT);
}
