/**
 * A small RFC 4180 CSV reader: quoted fields, doubled quotes, commas and newlines inside quotes,
 * CRLF or LF line ends, a header row. Enough for dataset metadata; no type guessing.
 */
import { readFileSync } from 'node:fs';

export class CsvError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'CsvError';
  }
}

/** Parses CSV text into rows of fields. */
export function parseCsvRows(text: string, file = '<csv>'): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // byte-order mark
  for (; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      field = '';
      if (!(row.length === 1 && row[0] === '')) rows.push(row); // skip blank lines
      row = [];
    } else field += c;
  }
  if (quoted) throw new CsvError(file, 'unterminated quoted field at end of file');
  if (field !== '' || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

export interface CsvTable {
  file: string;
  header: string[];
  /** The same names as `header` (alias). */
  columns: string[];
  /** One record per data row, keyed by header name. */
  records: Record<string, string>[];
}

/** Parses CSV text with a header row into records; rows with the wrong field count are an error. */
export function parseCsv(text: string, file = '<csv>'): CsvTable {
  const rows = parseCsvRows(text, file);
  if (rows.length === 0) throw new CsvError(file, 'empty file (no header row)');
  const header = rows[0].map((h) => h.trim());
  const records = rows.slice(1).map((r, i) => {
    if (r.length !== header.length) throw new CsvError(file, `line ${i + 2} has ${r.length} fields, the header has ${header.length}`);
    const rec: Record<string, string> = {};
    header.forEach((h, j) => (rec[h] = r[j]));
    return rec;
  });
  return { file, header, columns: header, records };
}

export function readCsv(file: string): CsvTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CsvError(file, `cannot read: ${(e as Error).message}`);
  }
  return parseCsv(text, file);
}

/** Throws naming the file and the missing column(s). */
export function requireColumns(table: CsvTable, columns: (string | undefined)[]): void {
  const missing = columns.filter((c): c is string => !!c && !table.header.includes(c));
  if (missing.length) throw new CsvError(table.file, `missing column(s) ${missing.map((c) => `'${c}'`).join(', ')}; columns are ${table.header.join(', ')}`);
}
