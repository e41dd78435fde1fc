import { InMemoryBlobStore } from './inmemory.js';
import { runDriverSuite } from './suite.js';

runDriverSuite('inmemory', async () => ({ store: new InMemoryBlobStore(), cleanup: async () => {} }));
