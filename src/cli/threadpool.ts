/**
 * libuv's thread pool runs every file operation, fsyncs included, for every
 * serving thread of the process. Its default of 4 threads would let only four
 * pushes fsync at once; with twice that, concurrent pushes fsync in parallel
 * and the filesystem journal commits them together (16 measured no better). libuv reads the variable when the pool is first
 * used, so this module is imported before anything else.
 */
process.env.UV_THREADPOOL_SIZE ??= '8';
