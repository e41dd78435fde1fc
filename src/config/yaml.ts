/** yaml's parser, from its bundle (src/vendor.ts): the package is 72 files to load. Its types from 'yaml' (erased when compiled). */
import type * as Y from 'yaml';
import { vendored } from '../vendor.js';

export const YAML: { parse: typeof Y.parse } = vendored<typeof Y>('yaml');
