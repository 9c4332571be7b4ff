import type { Admin, Level } from "./api.js";

/** What every screen gets: the KeyAdmin client and what the signed-in key may do. */
export interface ViewContext {
  admin: Admin;
  level: Level;
  /** Whether the signed-in key holds `need`; screens hide the controls it does not. */
  can(need: Level): boolean;
  /** Called when a call answers UNAUTHENTICATED (the key was revoked meanwhile): back to the sign-in screen. */
  unauthenticated(): void;
}

/** A mounted screen; `stop` ends its timers when another screen replaces it. */
export interface View {
  el: HTMLElement;
  stop?: () => void;
}
