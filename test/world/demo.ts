// Builds a small world and waits: the world's own tests run this as a child process and then
// interrupt it (SIGTERM or SIGKILL) to prove that nothing is left behind.
import { World } from '../../world/world.js';

const world = await World.create();
const inet = await world.addHost('inet', { public: 1 });
const gw = await world.addHost('gw1', { public: 1, private: 1 });
inet.spawn('sleep', ['600']);
console.log(JSON.stringify({ prefix: world.prefix, gw: gw.ip4, inet: inet.ip4 }));
setInterval(() => {}, 1000);
