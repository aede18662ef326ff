/**
 * Data: image preprocessing, dataset readers (PAD-UFES-20, ISIC-style, generic CSV), seeded
 * patient-level splits, skin-tone groups (Fitzpatrick mapping, ITA estimate) and BiaslessNAS
 * batch composition.
 */
export * from './preprocess.js';
export * from './split.js';
export * from './csv.js';
export * from './groups.js';
export * from './dataset.js';
export * from './readers.js';
export * from './ita.js';
export * from './bgm.js';
