/*
 * Berth's native helpers: what Node's own API does not offer.
 *
 * dupSocket(fd): a second descriptor for an accepted connection, so that the
 * thread that accepted it can close its handle while another thread adopts
 * the connection (`new net.Socket({ fd })`). Node cannot pass a socket to a
 * worker thread, only between processes.
 *
 * sha256*() and writeHashed(): a running sha256 that is fed where the bytes
 * are written, on libuv's thread pool, instead of on the JavaScript thread
 * (node:crypto hashes synchronously). OpenSSL's SHA256 functions are the
 * ones node itself links and exports. With `sync`, the same job then
 * fdatasyncs the file: an upload's last write and its flush to disk cost
 * one trip through the thread pool, not two.
 *
 * tryLock(fd), unlock(fd): flock, so that two threads or processes never
 * write one upload at once.
 */
#define NAPI_VERSION 8
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/uio.h>
#include <unistd.h>
#include <node_api.h>
#include <uv.h>
#include <openssl/sha.h>

#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      napi_throw_error(env, NULL, "berth_native: " #call " failed");    \
      return NULL;                                                      \
    }                                                                   \
  } while (0)

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char message[128];
  snprintf(message, sizeof message, "%s: %s", syscall, strerror(err));
  napi_throw_error(env, NULL, message);
  return NULL;
}

/* An Error like node's own for a failed system call: message, code, errno, syscall. */
static napi_value errno_error(napi_env env, const char *syscall, int err) {
  char message[128];
  snprintf(message, sizeof message, "%s: %s", syscall, strerror(err));
  napi_value msg = NULL, error = NULL, code = NULL, number = NULL, call = NULL;
  const char *name = uv_err_name(-err); /* libuv's codes are negated errnos here */
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_int32(env, -err, &number);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &call);
  napi_set_named_property(env, error, "code", code);
  napi_set_named_property(env, error, "errno", number);
  napi_set_named_property(env, error, "syscall", call);
  return error;
}

/* Fetches the first `n` arguments into argv, or throws a TypeError showing `usage`. */
static bool get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *usage) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  return true;
}

/* The one argument, a descriptor number; -1 (with a TypeError thrown) otherwise. */
static int fd_arg(napi_env env, napi_callback_info info, const char *usage) {
  napi_value argv[1];
  int32_t fd;
  if (!get_args(env, info, 1, argv, usage)) return -1;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, usage);
    return -1;
  }
  return fd;
}

static napi_value dup_socket(napi_env env, napi_callback_info info) {
  int fd = fd_arg(env, info, "dupSocket(fd): fd must be a descriptor number");
  if (fd < 0) return NULL;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return throw_errno(env, "dup", errno);
  napi_value result;
  CHECK(napi_create_int32(env, copy, &result));
  return result;
}

/* ---- running sha256 ---- */

typedef struct {
  SHA256_CTX ctx;
  /* A writeHashed() is feeding it on the thread pool. */
  int busy;
} Sha256;

static void sha256_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static Sha256 *sha256_arg(napi_env env, napi_value value) {
  Sha256 *h = NULL;
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external || napi_get_value_external(env, value, (void **)&h) != napi_ok || h == NULL) {
    napi_throw_type_error(env, NULL, "expected a sha256 state from sha256Create()");
    return NULL;
  }
  if (h->busy) {
    napi_throw_error(env, NULL, "sha256 state is in use by a write in flight");
    return NULL;
  }
  return h;
}

static napi_value sha256_create(napi_env env, napi_callback_info info) {
  (void)info;
  Sha256 *h = calloc(1, sizeof *h);
  if (h == NULL) return throw_errno(env, "calloc", ENOMEM);
  SHA256_Init(&h->ctx);
  napi_value result;
  if (napi_create_external(env, h, sha256_free, NULL, &result) != napi_ok) {
    free(h);
    napi_throw_error(env, NULL, "berth_native: napi_create_external failed");
    return NULL;
  }
  return result;
}

/* The first `n` arguments, the first being a sha256 state; NULL (with an exception thrown) otherwise. */
static Sha256 *state_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *usage) {
  return get_args(env, info, n, argv, usage) ? sha256_arg(env, argv[0]) : NULL;
}

/* sha256Update(state, bytes): on this thread, for bytes that are not written by writeHashed. */
static napi_value sha256_update(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  Sha256 *h = state_args(env, info, 2, argv, "sha256Update(state, bytes)");
  if (h == NULL) return NULL;
  void *data;
  size_t length;
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, "sha256Update: bytes must be a Uint8Array");
    return NULL;
  }
  SHA256_Update(&h->ctx, data, length);
  return NULL;
}

/* sha256Digest(state): the lowercase hex digest of what was fed so far; the state stays usable. */
static napi_value sha256_digest(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Sha256 *h = state_args(env, info, 1, argv, "sha256Digest(state)");
  if (h == NULL) return NULL;
  SHA256_CTX copy = h->ctx;
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256_Final(md, &copy);
  static const char hex[] = "0123456789abcdef";
  char out[SHA256_DIGEST_LENGTH * 2];
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
  napi_value result;
  CHECK(napi_create_string_latin1(env, out, sizeof out, &result));
  return result;
}

/* ---- writeHashed(fd, buffers, position, state|null) → Promise<void> ---- */

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref buffers; /* keeps the buffers alive while the pool thread reads them */
  Sha256 *hash;
  napi_ref hash_ref;
  int fd;
  int64_t position;
  struct iovec *iov;
  uint32_t count;
  /* fdatasync once everything is written. */
  bool sync;
  int err;
  /* The call that failed, when err is set. */
  const char *failed;
} WriteJob;

#define MAX_IOV 1024

static void write_execute(napi_env env, void *data) {
  (void)env;
  WriteJob *job = data;
  struct iovec *iov = job->iov;
  int left = (int)job->count;
  int64_t position = job->position;
  /* Hash first: the buffers are only read, and a failed write fails the whole append anyway. */
  if (job->hash != NULL)
    for (uint32_t i = 0; i < job->count; i++) SHA256_Update(&job->hash->ctx, job->iov[i].iov_base, job->iov[i].iov_len);
  while (left > 0) {
    ssize_t n = pwritev(job->fd, iov, left, position);
    if (n < 0) {
      if (errno == EINTR) continue;
      job->err = errno;
      job->failed = "pwritev";
      return;
    }
    if (n == 0) {
      /* No progress (not a regular file?): fail rather than spin. */
      job->err = EIO;
      job->failed = "pwritev";
      return;
    }
    position += n;
    /* A short write: skip what was written and go on with the rest. */
    while (left > 0 && (size_t)n >= iov->iov_len) {
      n -= (ssize_t)iov->iov_len;
      iov++;
      left--;
    }
    if (left > 0) {
      iov->iov_base = (char *)iov->iov_base + n;
      iov->iov_len -= (size_t)n;
    }
  }
  if (job->sync) {
    int rc;
    do rc = fdatasync(job->fd);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
      job->err = errno;
      job->failed = "fdatasync";
    }
  }
}

static void write_complete(napi_env env, napi_status status, void *data) {
  WriteJob *job = data;
  if (job->hash != NULL) job->hash->busy = 0;
  if (status != napi_ok && job->err == 0) {
    job->err = ECANCELED;
    job->failed = "pwritev";
  }
  if (job->err == 0) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    napi_resolve_deferred(env, job->deferred, undefined);
  } else {
    napi_reject_deferred(env, job->deferred, errno_error(env, job->failed, job->err));
  }
  napi_delete_reference(env, job->buffers);
  if (job->hash_ref != NULL) napi_delete_reference(env, job->hash_ref);
  napi_delete_async_work(env, job->work);
  free(job->iov);
  free(job);
}

static napi_value write_hashed(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  int64_t position;
  bool is_array;
  uint32_t count = 0;
  if (argc < 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &count) != napi_ok || count == 0 || count > MAX_IOV || napi_get_value_int64(env, argv[2], &position) != napi_ok || position < 0) {
    napi_throw_type_error(env, NULL, "writeHashed(fd, buffers (1 to 1024 Uint8Arrays), position, state|null, sync?)");
    return NULL;
  }
  bool sync = false;
  if (argc >= 5) {
    napi_valuetype sync_type;
    CHECK(napi_typeof(env, argv[4], &sync_type));
    if (sync_type != napi_undefined && napi_get_value_bool(env, argv[4], &sync) != napi_ok) {
      napi_throw_type_error(env, NULL, "writeHashed: sync must be a boolean");
      return NULL;
    }
  }
  Sha256 *hash = NULL;
  napi_valuetype state_type;
  CHECK(napi_typeof(env, argv[3], &state_type));
  if (state_type != napi_null && state_type != napi_undefined) {
    hash = sha256_arg(env, argv[3]);
    if (hash == NULL) return NULL;
  }
  WriteJob *job = calloc(1, sizeof *job);
  struct iovec *iov = calloc(count, sizeof *iov);
  if (job == NULL || iov == NULL) {
    free(job);
    free(iov);
    return throw_errno(env, "calloc", ENOMEM);
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    napi_typedarray_type type;
    if (napi_get_element(env, argv[1], i, &element) != napi_ok || napi_get_typedarray_info(env, element, &type, &iov[i].iov_len, &iov[i].iov_base, NULL, NULL) != napi_ok ||
        type != napi_uint8_array) {
      free(job);
      free(iov);
      napi_throw_type_error(env, NULL, "writeHashed: every buffer must be a Uint8Array");
      return NULL;
    }
  }
  job->fd = fd;
  job->position = position;
  job->iov = iov;
  job->count = count;
  job->sync = sync;
  job->hash = hash;
  napi_value promise = NULL, name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) goto fail;
  if (napi_create_reference(env, argv[1], 1, &job->buffers) != napi_ok) goto fail;
  if (hash != NULL && napi_create_reference(env, argv[3], 1, &job->hash_ref) != napi_ok) goto fail;
  if (napi_create_string_utf8(env, "berth.writeHashed", NAPI_AUTO_LENGTH, &name) != napi_ok) goto fail;
  if (napi_create_async_work(env, NULL, name, write_execute, write_complete, job, &job->work) != napi_ok) goto fail;
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    goto fail;
  }
  /* Only the JavaScript thread reads or clears it (write_complete runs there). */
  if (hash != NULL) hash->busy = 1;
  return promise;

fail:
  if (job->deferred != NULL) {
    napi_value error;
    napi_value msg;
    napi_create_string_utf8(env, "writeHashed: could not queue the write", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  if (job->buffers != NULL) napi_delete_reference(env, job->buffers);
  if (job->hash_ref != NULL) napi_delete_reference(env, job->hash_ref);
  free(iov);
  free(job);
  napi_throw_error(env, NULL, "writeHashed: could not queue the write");
  return NULL;
}

/* ---- advisory locks: tryLock(fd) → boolean, unlock(fd) ---- */

/*
 * An exclusive flock on the file, without waiting: false when another open
 * file description (another thread's or process's open of the same file)
 * holds it.
 */
static napi_value try_lock(napi_env env, napi_callback_info info) {
  int fd = fd_arg(env, info, "tryLock(fd): fd must be a descriptor number");
  if (fd < 0) return NULL;
  int rc;
  do rc = flock(fd, LOCK_EX | LOCK_NB);
  while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno != EWOULDBLOCK) return throw_errno(env, "flock", errno);
  napi_value result;
  CHECK(napi_get_boolean(env, rc == 0, &result));
  return result;
}

static napi_value unlock(napi_env env, napi_callback_info info) {
  int fd = fd_arg(env, info, "unlock(fd): fd must be a descriptor number");
  if (fd < 0) return NULL;
  if (flock(fd, LOCK_UN) < 0) return throw_errno(env, "flock", errno);
  return NULL;
}

NAPI_MODULE_INIT() {
  static const struct {
    const char *name;
    napi_callback fn;
  } functions[] = {
      {"dupSocket", dup_socket},
      {"sha256Create", sha256_create},
      {"sha256Update", sha256_update},
      {"sha256Digest", sha256_digest},
      {"writeHashed", write_hashed},
      {"tryLock", try_lock},
      {"unlock", unlock},
  };
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
    napi_value fn;
    napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, functions[i].name, fn);
  }
  return exports;
}
