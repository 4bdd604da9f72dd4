// Calls a route through the executor the way the core's server does, for tests that need the
// database but not TLS.
import type { Envelope } from '../../lib/envelope.js';
import type { Execution, Executor } from '../../core/executor.js';
import { makeEnvelope } from './envelope.js';

export type Call = Partial<Envelope> & Pick<Envelope, 'route' | 'method' | 'path'>;

export function call(executor: Executor, request: Call): Promise<Execution> {
  return executor.execute(makeEnvelope(request));
}

export const notes = {
  create: (body: unknown): Call => ({ route: 'notes.create', method: 'POST', path: '/notes', body }),
  get: (id: string): Call => ({ route: 'notes.get', method: 'GET', path: `/notes/${id}`, params: { id } }),
  list: (query: Record<string, string> = {}): Call => ({
    route: 'notes.list',
    method: 'GET',
    path: '/notes',
    query,
  }),
  delete: (id: string): Call => ({
    route: 'notes.delete',
    method: 'DELETE',
    path: `/notes/${id}`,
    params: { id },
  }),
};
