// Fixed SPA keys for the tests (as `nonstop spa-keygen` prints them), so that a run is the same
// every time, and the SpaKey the codec takes from the guard's base64 form.
import type { GuardSpaConfig } from '../../config/schemas/guard.js';
import type { SpaKey } from '../../knock/spa.js';

export interface SpaClientKeys {
  readonly name: string;
  readonly key: string;
  readonly hmacKey: string;
}

export const ALICE: SpaClientKeys = {
  name: 'alice',
  key: '+vLtPnQbGTaqFKLKHqaLsstBlBhESeCNF5AfGP7luQs=',
  hmacKey: 'X5UgCsYN1Kv25V+xLwO0bjtGh5YA4ZgnYoGYyIrgNqqXfUfS1sokzBwa1N3CHJ4QOhLUsNVmCcsiRpJ8bC8Ypg==',
};

export const NAT: SpaClientKeys = {
  name: 'nat',
  key: '55tu7zNyzVU0ykyVWbzldN1rT+RTG+M1tPnLVGRFFrY=',
  hmacKey: 'K4ZC1SVfXsMiPF+pAih0HSpwTyTXQG5wxn1FW/1qaaNLB5QH5KE7sIHJl7q6JB1ePxMgaVFuFMA3PpYR+pUaug==',
};

export const spaKeyOf = (c: SpaClientKeys): SpaKey => ({
  name: c.name,
  encryptionKey: Buffer.from(c.key, 'base64'),
  hmacKey: Buffer.from(c.hmacKey, 'base64'),
});

/** A guard's SPA section as its schema's defaults make it, with alice (source) and nat (packet). */
export function spaGateConfig(overrides: Partial<GuardSpaConfig> = {}): GuardSpaConfig {
  return {
    port: 62201,
    maxAgeSeconds: 120,
    clockSkewSeconds: 30,
    replayCacheSize: 1024,
    perSourcePacketsPerSecond: 20,
    packetsPerSecond: 5000,
    clients: [
      { ...ALICE, openFor: 'source' },
      { ...NAT, openFor: 'packet' },
    ],
    ...overrides,
  };
}
