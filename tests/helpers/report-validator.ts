/** A validator of src/report/schema.json (ajv, strict mode, with the standard formats). */
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { reportSchema } from '../../src/report/index.js';

export function reportValidator() {
  const ajv = new Ajv({ strict: true, allErrors: true });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ajv.compile(reportSchema);
}
