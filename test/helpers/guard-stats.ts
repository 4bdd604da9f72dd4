// A knock guard's counts for tests that build its metrics without a guard.
import type { GuardStats } from '../../knock/guard.js';

/** A guard that has seen nothing yet; spread it and set the counts a test needs. */
export const ZERO_GUARD_STATS: GuardStats = {
  received: 0,
  malformed: 0,
  tracked: 0,
  evicted: 0,
  opened: 0,
  skewed: 0,
  failed: 0,
  expired: 0,
  windows: 0,
  windowErrors: 0,
  spaOpened: 0,
  spaUnauthenticated: 0,
  spaRefused: 0,
  spaRemembered: 0,
};
