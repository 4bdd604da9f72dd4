// Schema of the route table (`"kind": "routes"`), read by gateway, broker and core alike.
import { schemaKeySchema } from './common.js';

export const routesSchema = {
  $id: 'nonstop/routes',
  type: 'object',
  additionalProperties: false,
  required: ['kind', 'routes'],
  properties: {
    $schema: schemaKeySchema,
    kind: { const: 'routes' },
    routes: {
      type: 'array',
      minItems: 1,
      maxItems: 1024,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'method', 'path'],
        properties: {
          name: { type: 'string', pattern: '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$', maxLength: 128 },
          method: { type: 'string', enum: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] },
          path: { type: 'string', pattern: '^(/(:?[A-Za-z0-9_.~-]+))+$|^/$', maxLength: 512 },
          timeoutMs: { type: 'integer', minimum: 100, maximum: 600000 },
          maxBodyBytes: { type: 'integer', minimum: 0, maximum: 67108864 },
          schema: {
            type: 'object',
            additionalProperties: false,
            properties: {
              params: { type: 'object' },
              query: { type: 'object' },
              body: { type: 'object' },
            },
            default: {},
          },
        },
      },
    },
  },
} as const;

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteDefinition {
  readonly name: string;
  readonly method: HttpMethod;
  readonly path: string;
  readonly timeoutMs?: number;
  readonly maxBodyBytes?: number;
  readonly schema: {
    readonly params?: Readonly<Record<string, unknown>>;
    readonly query?: Readonly<Record<string, unknown>>;
    readonly body?: Readonly<Record<string, unknown>>;
  };
}

export interface RoutesConfig {
  readonly kind: 'routes';
  readonly routes: readonly RouteDefinition[];
}
