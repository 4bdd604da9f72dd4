// The step before each SSH connection to a gateway: a knock that opens the gateway's
// filtered SSH port to this broker's address for a short window. Pluggable, so the port
// knocking client (knock/) can be wired in; until then, no knock.

export interface Knocker {
  /** Resolves once the knock is sent; rejects if it could not be. */
  knock(gatewayHost: string): Promise<void>;
}

/** For gateways whose SSH port is open to brokers without a knock. */
export const noKnock: Knocker = {
  knock: () => Promise.resolve(),
};
