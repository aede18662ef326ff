/** Datasets and calibration sources named on the command line. */
import { existsSync } from 'node:fs';
import { readCsvDataset, readIsic, readPadUfes20 } from '../data/readers.js';
import { readCsv } from '../data/csv.js';
import type { Dataset } from '../data/dataset.js';
import type { SplitName } from '../data/split.js';
import { CliError } from './errors.js';

/**
 * A dataset from a spec: `pad-ufes-20[:split]`, `isic-uda1[:split]`, or `csv:<file>[:split]`
 * (columns image,label[,group|fitzpatrick][,patient][,split]).
 */
export function datasetFromSpec(spec: string, dataRoot?: string): Dataset {
  const m = /^(pad-ufes-20|isic-uda1|csv:(.+?))(?::(train|val|test))?$/.exec(spec);
  if (!m) throw new CliError(`dataset '${spec}': expected pad-ufes-20[:split], isic-uda1[:split] or csv:<file>[:split]`);
  const split = m[3] as SplitName | undefined;
  let ds: Dataset;
  if (m[1] === 'pad-ufes-20') ds = readPadUfes20({ root: dataRoot });
  else if (m[1] === 'isic-uda1') ds = readIsic({ root: dataRoot });
  else {
    const file = m[2];
    if (!existsSync(file)) throw new CliError(`dataset CSV ${file} not found`);
    // Optional columns are used when present: group (names), else fitzpatrick; patient; split.
    const columns = new Set(readCsv(file).header);
    const has = (...names: string[]) => names.find((n) => columns.has(n));
    ds = readCsvDataset({
      csv: file,
      groupColumn: has('group'),
      fitzpatrickColumn: has('group') ? undefined : has('fitzpatrick', 'fitspatrick'),
      patientColumn: has('patient_id', 'patient'),
      splitColumn: has('split'),
    });
  }
  return split ? ds.split(split) : ds;
}
