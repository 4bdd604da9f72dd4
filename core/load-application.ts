// Finds the application a core config names ("notes", built in, or a path to a JS module that
// exports one) and checks it against the route table: every route needs a handler or an
// upstream (one, not both), and a handler for a route that does not exist, or an upstream
// pattern that matches no route, is a mistake too. All fail at start.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RoutesConfig } from '../config/schemas/routes.js';
import { errors } from '../lib/errors.js';
import { notesApplication } from './app/notes/index.js';
import type { Application } from './application.js';
import type { UpstreamTarget } from './upstream/targets.js';

const BUILT_IN: Readonly<Record<string, Application>> = { notes: notesApplication };

/** `"application": null`: no handlers, every route goes to an upstream. */
export const NO_APPLICATION: Application = { name: 'none', migrations: [], handlers: {} };

/** `spec`: a built-in name, or a module path resolved against `baseDir`. */
export async function loadApplication(spec: string, baseDir = process.cwd()): Promise<Application> {
  const builtIn = BUILT_IN[spec];
  if (builtIn !== undefined) return builtIn;
  const file = resolve(baseDir, spec);
  let mod: unknown;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (err) {
    throw errors.APPLICATION_INVALID(
      `application "${spec}": not a built-in application (${Object.keys(BUILT_IN).join(', ')}) and ${file} cannot be imported (${(err as Error).message})`,
      undefined,
      { cause: err },
    );
  }
  const exported = (mod as Record<string, unknown>).default ?? (mod as Record<string, unknown>).application;
  return asApplication(file, exported);
}

/** Checks the shape of a module's export; it came from outside the type system. */
export function asApplication(source: string, value: unknown): Application {
  const problems: string[] = [];
  const app = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  if (typeof app.name !== 'string' || app.name === '') problems.push('"name" must be a non-empty string');
  if (!Array.isArray(app.migrations)) problems.push('"migrations" must be an array');
  else {
    app.migrations.forEach((m: unknown, i) => {
      const mig = (typeof m === 'object' && m !== null ? m : {}) as Record<string, unknown>;
      const sqlOk = Array.isArray(mig.sql) && mig.sql.every((s) => typeof s === 'string');
      if (typeof mig.version !== 'number' || typeof mig.name !== 'string' || !sqlOk) {
        problems.push(`"migrations[${i}]" must be { version: number, name: string, sql: string[] }`);
      }
    });
  }
  if (typeof app.handlers !== 'object' || app.handlers === null)
    problems.push('"handlers" must be an object');
  else {
    for (const [name, handler] of Object.entries(app.handlers)) {
      if (typeof handler !== 'function') problems.push(`"handlers.${name}" must be a function`);
    }
  }
  if (problems.length > 0) {
    throw errors.APPLICATION_INVALID(
      `${source}: the export is not an application (default or "application"): ${problems.join('; ')}`,
    );
  }
  return value as Application;
}

export function checkHandlers(
  app: Application,
  routes: RoutesConfig,
  upstreams: readonly UpstreamTarget[] = [],
): void {
  const routeNames = routes.routes.map((r) => r.name);
  const upstreamOf = (name: string) => upstreams.find((u) => u.matches(name));
  const missing = routeNames.filter((name) => !Object.hasOwn(app.handlers, name) && !upstreamOf(name));
  const unknown = Object.keys(app.handlers).filter((name) => !routeNames.includes(name));
  const both = routeNames.filter((name) => Object.hasOwn(app.handlers, name) && upstreamOf(name));
  const idle = upstreams.filter((u) => !routeNames.some((name) => u.matches(name)));
  const problems: string[] = [];
  if (missing.length > 0)
    problems.push(`no handler for route(s) ${missing.join(', ')} (and no upstream serves them)`);
  if (unknown.length > 0) problems.push(`handler(s) for unknown route(s) ${unknown.join(', ')}`);
  if (both.length > 0) {
    problems.push(`route(s) ${both.join(', ')} have a handler and match an upstream; keep one`);
  }
  for (const u of idle) problems.push(`${u.label}.routes matches no route in the route table`);
  if (problems.length > 0) {
    throw errors.APPLICATION_INVALID(`application "${app.name}": ${problems.join('; ')}`);
  }
}
