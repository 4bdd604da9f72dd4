// Start-time checks of a gateway's static mounts that its schema cannot express: each folder
// exists, no mount lies in another, and none takes paths that a route or a health check answers.
import { statSync } from 'node:fs';
import { errors } from '../lib/errors.js';
import type { StaticMount } from './schemas/gateway.js';
import type { RoutesConfig } from './schemas/routes.js';

/** Answered by the gateway itself (gateway/handler.ts), whatever the route table says. */
const RESERVED_PATHS = ['/healthz', '/readyz'];

/** Throws CONFIG_INVALID naming `file` and each field at fault (all of them at once). */
export function checkStaticMounts(file: string, mounts: readonly StaticMount[], routes: RoutesConfig): void {
  const problems = staticMountProblems(mounts, routes);
  if (problems.length > 0) {
    throw errors.CONFIG_INVALID(problems.map((p) => `${file}: field "${p.field}" ${p.expected}`).join('\n'));
  }
}

export function staticMountProblems(
  mounts: readonly StaticMount[],
  routes: RoutesConfig,
): { field: string; expected: string }[] {
  const problems: { field: string; expected: string }[] = [];
  mounts.forEach((mount, i) => {
    const at = `static[${i}]`;
    try {
      if (!statSync(mount.dir).isDirectory()) {
        problems.push({ field: `${at}.dir`, expected: `must be a folder (${mount.dir} is not one)` });
      }
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      problems.push({ field: `${at}.dir`, expected: `must be an existing folder (${mount.dir}: ${code})` });
    }
    for (let j = 0; j < i; j++) {
      const other = mounts[j]!.path;
      if (other === mount.path) {
        problems.push({ field: `${at}.path`, expected: `"${mount.path}" is static[${j}].path too` });
      } else if (mount.path.startsWith(other) || other.startsWith(mount.path)) {
        problems.push({
          field: `${at}.path`,
          expected: `"${mount.path}" and static[${j}].path "${other}" must not lie one inside the other`,
        });
      }
    }
    for (const reserved of RESERVED_PATHS) {
      if (reserved.startsWith(mount.path)) {
        problems.push({
          field: `${at}.path`,
          expected: `"${mount.path}" would take ${reserved} from the gateway`,
        });
      }
    }
    for (const route of routes.routes) {
      if (shadows(mount.path, route.path)) {
        problems.push({
          field: `${at}.path`,
          expected:
            `"${mount.path}" would shadow route "${route.name}" (${route.method} ${route.path}): ` +
            'paths under a static mount never reach the route table',
        });
      }
    }
  });
  return problems;
}

/** True when some path under the mount matches the route's pattern (a `:param` matches any segment). */
export function shadows(mountPath: string, routePath: string): boolean {
  const prefix = mountPath.split('/').slice(1, -1);
  const segments = routePath.split('/').slice(1);
  // A path under the mount has every prefix segment and at least one more.
  if (segments.length <= prefix.length) return false;
  return prefix.every((p, i) => segments[i]!.startsWith(':') || segments[i] === p);
}
