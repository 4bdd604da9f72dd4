// A process whose wall clock is off by a number of seconds: libfaketime preloaded (Debian's
// faketime package), monotonic time left alone so timers run as ever. Linux time namespaces
// shift only the monotonic and boot clocks, never the wall clock, so this is how a host with a
// wrong clock is played in the world.
import { existsSync } from 'node:fs';

export const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

/** Why a clock cannot be skewed here, or undefined when it can. */
export function faketimeSkipReason(): string | undefined {
  return existsSync(FAKETIME_LIB) ? undefined : `no ${FAKETIME_LIB} (apt-get install faketime)`;
}

/** The environment of a process whose wall clock runs `seconds` off. */
export function skewedClockEnv(seconds: number): Record<string, string> {
  return {
    LD_PRELOAD: FAKETIME_LIB,
    FAKETIME: `${seconds >= 0 ? '+' : ''}${seconds}s`,
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  };
}
