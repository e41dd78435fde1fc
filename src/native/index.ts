/**
 * The native addon (src/native/berth.c), built by `npm install` with
 * node-gyp into build/Release. It holds only what Node's API lacks.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Native {
  /** A new descriptor (close-on-exec) for the same open socket. */
  dupSocket(fd: number): number;
}

// dist/src/native/index.js → <repo>/build/Release
const addon = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../build/Release/berth_native.node');

let loaded: Native | undefined;

export function native(): Native {
  if (!loaded) {
    try {
      loaded = createRequire(import.meta.url)(addon) as Native;
    } catch (err) {
      throw new Error(`Berth's native addon is missing or broken (${(err as Error).message}); run \`npm install\` (or \`npm run install\`) to build it`);
    }
  }
  return loaded;
}
