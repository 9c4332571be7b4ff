import { mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { buildConsole } from "../../scripts/build-console.mjs";

const DIST = join(import.meta.dirname, "..", "..", "dist");

/** Debian's chromium, installed by .ci/run; playwright-core drives it without downloading a browser of its own. */
export const CHROMIUM = "/usr/bin/chromium";

/**
 * Bundles the console into dist/console, where a server run from source finds it, and starts headless chromium
 * (without its sandbox: CI runs as root, where chromium refuses to start sandboxed).
 */
export async function startBrowser(): Promise<Browser> {
  installConsole();
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
}

/**
 * Builds the console aside and moves it into dist/console file by file, the page last: another test file may be
 * serving dist/console at this moment, and a rename replaces a file whole where a rebuild in place would not.
 */
function installConsole(): void {
  const target = join(DIST, "console");
  const staging = buildConsole(join(DIST, `console-build-${process.pid}`));
  mkdirSync(target, { recursive: true });
  const files = readdirSync(staging).sort((a, b) => Number(a === "index.html") - Number(b === "index.html"));
  for (const file of files) renameSync(join(staging, file), join(target, file));
  rmSync(staging, { recursive: true, force: true });
}

/** A fresh page (own storage, no cookies) that fails the test on any script error in the console. */
export async function openPage(browser: Browser): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 850 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  return { page, errors };
}

/** Signs in on the console at `url` with `key` and waits for the first screen. */
export async function signIn(page: Page, url: string, key: string): Promise<void> {
  await page.goto(`${url}/`);
  await page.getByLabel("Root key").fill(key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Sign out" }).waitFor();
}
