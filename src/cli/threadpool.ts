/**
 * libuv's thread pool runs every file operation, fsyncs included. Its default
 * of 4 threads would let only four pushes fsync at once per process; with
 * twice that, concurrent pushes fsync in parallel and the filesystem journal
 * commits them together. libuv reads the variable when the pool is first
 * used, so this module is imported before anything else.
 */
process.env.UV_THREADPOOL_SIZE ??= '8';
