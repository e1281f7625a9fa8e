/** Parameter validation shared by every operation: one readable INVALID_PARAMETERS error. */
import type { z } from 'zod';
import { SuperresError } from './errors';

/** Parses `input` with `schema`, turning zod's issues into one error that names every field. */
export function parseParams<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const parsed = schema.safeParse(input ?? {});
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => ({ field: i.path.join('.') || '(params)', message: i.message }));
  throw new SuperresError('INVALID_PARAMETERS', `Invalid parameters: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`, { issues });
}
