/**
 * Reshape targets as exporters compute them: a constant, or a Concat of pieces built from Shape ->
 * Gather -> (Mul/Div by a constant) -> Unsqueeze arithmetic at run time. This module reads what it
 * can of such a target (known constants, and the constant a dynamic piece is multiplied or divided
 * by) and rewrites its trailing entries so the graph stays right for any batch size.
 */
import { GraphError, GraphIndex, attrInt, intAttr, makeInt64Tensor, makeNode, readInts, type NodeProto } from '../../onnx/index.js';
import { resolveConstant } from './linear.js';

/** One entry of a reshape target. */
export interface TargetEntry {
  /** The value when it is a constant. */
  known?: number;
  /** For a dynamic entry computed as Mul(x, c): c. */
  mulConst?: number;
  /** For a dynamic entry computed as Div(x, c): c. */
  divConst?: number;
}

interface Piece {
  value: string;
  /** Entries, when the piece's length is known. */
  entries?: TargetEntry[];
}

/** The target of a Reshape, piece by piece. */
export interface ReshapeTarget {
  reshape: NodeProto;
  pieces: Piece[];
  /** True when the whole target is one constant. */
  constant: boolean;
}

export function readReshapeTarget(index: GraphIndex, reshape: NodeProto): ReshapeTarget {
  const shape = reshape.input[1];
  const c = resolveConstant(index, shape);
  if (c) return { reshape, constant: true, pieces: [{ value: shape, entries: readInts(c, index.baseDir).map((v) => ({ known: v })) }] };
  const p = index.producer.get(shape);
  if (p?.opType === 'Concat' && attrInt(p, 'axis', 0) === 0) {
    return { reshape, constant: false, pieces: p.input.map((v) => ({ value: v, entries: pieceEntries(index, v) })) };
  }
  throw new GraphError(`the shape of Reshape ${GraphIndex.label(reshape)} is computed by ${p ? GraphIndex.label(p) : `'${shape}'`}, which is not a constant or a Concat`);
}

function pieceEntries(index: GraphIndex, value: string): TargetEntry[] | undefined {
  const c = resolveConstant(index, value);
  if (c) return readInts(c, index.baseDir).map((v) => ({ known: v }));
  const p = index.producer.get(value);
  if (!p) return undefined;
  if (p.opType === 'Cast' || p.opType === 'Identity') return pieceEntries(index, p.input[0]);
  // A scalar made into a one-element vector.
  if (p.opType === 'Unsqueeze') return [scalarEntry(index, p.input[0])];
  if (p.opType === 'Reshape') {
    const s = resolveConstant(index, p.input[1]);
    if (s && readInts(s).length === 1 && readInts(s)[0] === 1) return [scalarEntry(index, p.input[0])];
  }
  return undefined;
}

function scalarEntry(index: GraphIndex, value: string, depth = 0): TargetEntry {
  const c = resolveConstant(index, value);
  if (c) return { known: readInts(c, index.baseDir)[0] };
  const p = index.producer.get(value);
  if (!p || depth > 8) return {};
  if (p.opType === 'Cast' || p.opType === 'Identity' || p.opType === 'Floor') return scalarEntry(index, p.input[0], depth + 1);
  if (p.opType === 'Mul') {
    for (const side of [0, 1]) {
      const k = resolveConstant(index, p.input[side]);
      if (k) return { mulConst: readInts(k, index.baseDir)[0] };
    }
  }
  if (p.opType === 'Div') {
    const k = resolveConstant(index, p.input[1]);
    if (k) return { divConst: readInts(k, index.baseDir)[0] };
  }
  return {};
}

/** The entry `fromEnd` places before the end (1 = last), or undefined where lengths are unknown. */
export function trailingEntry(t: ReshapeTarget, fromEnd: number): TargetEntry | undefined {
  let left = fromEnd;
  for (let i = t.pieces.length - 1; i >= 0; i--) {
    const e = t.pieces[i].entries;
    if (!e) return undefined;
    if (left <= e.length) return e[e.length - left];
    left -= e.length;
  }
  return undefined;
}

/** The target's length when every piece's length is known. */
export function targetRank(t: ReshapeTarget): number | undefined {
  let n = 0;
  for (const p of t.pieces) {
    if (!p.entries) return undefined;
    n += p.entries.length;
  }
  return n;
}

/**
 * Points the Reshape at a new target equal to the old one except for trailing entries:
 * `changes.get(k)` is the new value of the k-th entry from the end (a constant, or -1). Pieces
 * with no change are reused as they are (still computed at run time); a changed piece becomes a
 * constant, so every entry of it must be known or changed. Returns the nodes added.
 */
export function rewriteTrailingEntries(index: GraphIndex, t: ReshapeTarget, changes: Map<number, number>, blockName: string): NodeProto[] {
  const pieces = t.pieces.map((p) => ({ ...p, entries: p.entries?.map((e) => ({ ...e })), changed: false }));
  for (const [fromEnd, value] of changes) {
    let left = fromEnd;
    let done = false;
    for (let i = pieces.length - 1; i >= 0 && !done; i--) {
      const e = pieces[i].entries;
      if (!e) break;
      if (left <= e.length) {
        e[e.length - left] = { known: value };
        pieces[i].changed = true;
        done = true;
      } else left -= e.length;
    }
    if (!done) throw new GraphError(`attention block '${blockName}': cannot locate entry -${fromEnd} of the shape of Reshape ${GraphIndex.label(t.reshape)}`);
  }
  const all = pieces.flatMap((p) => p.entries ?? [{}]);
  if (all.filter((e) => e.known === -1).length > 1) {
    throw new GraphError(`attention block '${blockName}': Reshape ${GraphIndex.label(t.reshape)} would need two -1 entries; its head count is not recoverable for any batch size`);
  }
  const prefix = `${t.reshape.name || t.reshape.output[0]}_shape`;
  const newPieceValue = (p: (typeof pieces)[number]): string => {
    if (!p.changed) return p.value;
    const values = p.entries!.map((e) => {
      if (e.known === undefined) {
        throw new GraphError(`attention block '${blockName}': the shape of Reshape ${GraphIndex.label(t.reshape)} mixes run-time and head-count entries in one piece ('${p.value}')`);
      }
      return e.known;
    });
    const name = index.uniqueName(prefix);
    const tensor = makeInt64Tensor(name, values);
    index.graph.initializer.push(tensor);
    index.initializers.set(name, tensor);
    return name;
  };
  if (t.constant) {
    t.reshape.input[1] = newPieceValue(pieces[0]);
    return [];
  }
  const inputs = pieces.map(newPieceValue);
  const out = index.uniqueName(prefix);
  const concat = makeNode('Concat', inputs, [out], index.uniqueName(`${prefix}_concat`), [intAttr('axis', 0)]);
  index.graph.node.push(concat);
  t.reshape.input[1] = out;
  return [concat];
}
