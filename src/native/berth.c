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
 * fdatasyncs the file, and with a commit it then links the upload into
 * place, when its digest is the one expected, and fsyncs that directory:
 * a small push's write, flush and commit cost one trip through the thread
 * pool, not three.
 *
 * tryLock(fd), unlock(fd): flock, so that two threads or processes never
 * write one upload at once.
 *
 * sendFile(): a blob's bytes from its file to a client's socket off the
 * event loop, with sendfile(2) (they never pass through user space) or, for
 * a client on this host, copied through a small buffer. See the section below.
 */
#define _GNU_SOURCE /* preadv2, RWF_NOWAIT */
#define NAPI_VERSION 8
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* Lowercase hex of a sha256 state's digest so far; the state is left as it was. */
static void sha256_hex(const SHA256_CTX *ctx, char out[SHA256_DIGEST_LENGTH * 2]) {
  SHA256_CTX copy = *ctx;
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256_Final(md, &copy);
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
    out[2 * i] = hex[md[i] >> 4];
    out[2 * i + 1] = hex[md[i] & 15];
  }
}

/* sha256Digest(state): the lowercase hex digest of what was fed so far; the state stays usable. */
static napi_value sha256_digest(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  Sha256 *h = state_args(env, info, 1, argv, "sha256Digest(state)");
  if (h == NULL) return NULL;
  char out[SHA256_DIGEST_LENGTH * 2];
  sha256_hex(&h->ctx, out);
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
  /*
   * Then, when the hash is `expected` (lowercase hex), link `from` to `to`
   * and fsync `dir`: the commit of an upload, in the same trip through the
   * pool. NULL: no commit.
   */
  char *expected, *from, *to, *dir;
  /* What the commit did: "linked", "mismatch", or NULL with link_err set (the caller commits another way). */
  const char *outcome;
  int link_err;
  int err;
  /* The call that failed, when err is set. */
  const char *failed;
} WriteJob;

static void write_job_free(WriteJob *job) {
  free(job->iov);
  free(job->expected);
  free(job->from);
  free(job->to);
  free(job->dir);
  free(job);
}

/* On the pool, after the write and its fdatasync: link the upload into place if it is the digest expected, and flush the directory. */
static void commit_execute(WriteJob *job) {
  char actual[SHA256_DIGEST_LENGTH * 2];
  sha256_hex(&job->hash->ctx, actual);
  if (memcmp(actual, job->expected, sizeof actual) != 0) {
    job->outcome = "mismatch";
    return;
  }
  if (link(job->from, job->to) < 0) {
    if (errno != EEXIST) {
      job->link_err = errno;
      return;
    }
    /*
     * Already there: the same bytes, since the name is their digest, unless
     * a crash (with fsync off) or a fault left a file of another size. That
     * one is the caller's to replace (`place`, in the commit it falls back to).
     */
    struct stat have, want;
    if (stat(job->to, &have) != 0 || fstat(job->fd, &want) != 0 || have.st_size != want.st_size) {
      job->link_err = EEXIST;
      return;
    }
  }
  int dir = open(job->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    job->err = errno;
    job->failed = "open";
    return;
  }
  int rc;
  do rc = fsync(dir);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    job->err = errno;
    job->failed = "fsync";
  }
  close(dir);
  if (job->err == 0) job->outcome = "linked";
}

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
      return;
    }
  }
  if (job->expected != NULL) commit_execute(job);
}

static void write_complete(napi_env env, napi_status status, void *data) {
  WriteJob *job = data;
  if (job->hash != NULL) job->hash->busy = 0;
  if (status != napi_ok && job->err == 0) {
    job->err = ECANCELED;
    job->failed = "pwritev";
  }
  if (job->err == 0) {
    napi_value result;
    char code[64];
    if (job->link_err != 0) {
      uv_err_name_r(-job->link_err, code, sizeof code); /* into our buffer: uv_err_name allocates for unknown codes */
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &result);
    } else if (job->outcome != NULL) {
      napi_create_string_utf8(env, job->outcome, NAPI_AUTO_LENGTH, &result);
    } else {
      napi_get_undefined(env, &result);
    }
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    napi_reject_deferred(env, job->deferred, errno_error(env, job->failed, job->err));
  }
  napi_delete_reference(env, job->buffers);
  if (job->hash_ref != NULL) napi_delete_reference(env, job->hash_ref);
  napi_delete_async_work(env, job->work);
  write_job_free(job);
}

/* A string property of `object` as a new C string; NULL (with a TypeError thrown) when it is not a string. */
static char *string_property(napi_env env, napi_value object, const char *name, const char *usage) {
  napi_value value;
  size_t length;
  if (napi_get_named_property(env, object, name, &value) != napi_ok || napi_get_value_string_utf8(env, value, NULL, 0, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  char *out = malloc(length + 1);
  if (out == NULL) {
    throw_errno(env, "malloc", ENOMEM);
    return NULL;
  }
  napi_get_value_string_utf8(env, value, out, length + 1, NULL);
  return out;
}

#define COMMIT_USAGE "writeHashed: commit must be { digest: 64 lowercase hex, from, to, dir }, with a state and sync"

static napi_value write_hashed(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  int64_t position;
  bool is_array;
  uint32_t count = 0;
  if (argc < 4 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &count) != napi_ok || count == 0 || count > MAX_IOV || napi_get_value_int64(env, argv[2], &position) != napi_ok || position < 0) {
    napi_throw_type_error(env, NULL, "writeHashed(fd, buffers (1 to 1024 Uint8Arrays), position, state|null, sync?, commit?)");
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
  if (job == NULL) return throw_errno(env, "calloc", ENOMEM);
  /*
   * The commit's strings first: reading an object's properties may run
   * JavaScript (a getter), which must not see the buffers' memory captured
   * nor the state taken yet.
   */
  napi_valuetype commit_type = napi_undefined;
  if (argc >= 6 && napi_typeof(env, argv[5], &commit_type) != napi_ok) {
    free(job);
    napi_throw_error(env, NULL, "berth_native: napi_typeof failed");
    return NULL;
  }
  if (commit_type != napi_undefined && commit_type != napi_null) {
    if (commit_type != napi_object || hash == NULL || !sync) {
      write_job_free(job);
      napi_throw_type_error(env, NULL, COMMIT_USAGE);
      return NULL;
    }
    job->expected = string_property(env, argv[5], "digest", COMMIT_USAGE);
    if (job->expected != NULL) job->from = string_property(env, argv[5], "from", COMMIT_USAGE);
    if (job->from != NULL) job->to = string_property(env, argv[5], "to", COMMIT_USAGE);
    if (job->to != NULL) job->dir = string_property(env, argv[5], "dir", COMMIT_USAGE);
    bool hex = job->expected != NULL && strlen(job->expected) == SHA256_DIGEST_LENGTH * 2 && strspn(job->expected, "0123456789abcdef") == SHA256_DIGEST_LENGTH * 2;
    if (job->dir == NULL || !hex) {
      bool thrown = false;
      napi_is_exception_pending(env, &thrown);
      write_job_free(job);
      if (!thrown) napi_throw_type_error(env, NULL, COMMIT_USAGE);
      return NULL;
    }
    if (hash->busy) {
      write_job_free(job);
      napi_throw_error(env, NULL, "sha256 state is in use by a write in flight");
      return NULL;
    }
  }
  struct iovec *iov = calloc(count, sizeof *iov);
  if (iov == NULL) {
    write_job_free(job);
    return throw_errno(env, "calloc", ENOMEM);
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    napi_typedarray_type type;
    if (napi_get_element(env, argv[1], i, &element) != napi_ok || napi_get_typedarray_info(env, element, &type, &iov[i].iov_len, &iov[i].iov_base, NULL, NULL) != napi_ok ||
        type != napi_uint8_array) {
      free(iov);
      write_job_free(job);
      napi_throw_type_error(env, NULL, "writeHashed: every buffer must be a Uint8Array");
      return NULL;
    }
  }
  job->iov = iov;
  job->fd = fd;
  job->position = position;
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
  write_job_free(job);
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

/* ---- sendFile(socketFd, header|null, fileFd, offset, length) → { done, job } ---- */

/*
 * How it runs: the socket and the file are dup'ed, so the job owns its own
 * descriptors whatever node does with its own (a connection closed by node
 * meanwhile cannot hand its number to another one under us). The body goes
 * out with sendfile(2), or, with `copy`, by pread(2) into a SEND_COPY_BYTES
 * buffer and send(2): over loopback the receiver's TCP work runs on this
 * host's CPUs too, and there a lone stream of page-cache pages costs more
 * than copying (docs/performance.md, "Pull: sendfile or copy"). The copying
 * runs on libuv's thread pool, where a read of the file that misses the page
 * cache blocks a pool thread and not the event loop: the header is sent with
 * MSG_MORE (so a small blob leaves in the same packet), then sendfile(2)
 * until the bytes are all sent or a round's budget is spent (so one fast
 * client cannot hold a pool thread for a whole gigabyte while other jobs
 * queue). When the socket's buffer is full (EAGAIN: the socket is
 * non-blocking) the pool thread waits for it to drain a little while
 * (SEND_POOL_WAIT_MS): a client that reads as fast as we send, the common
 * case, is then served without a trip through the event loop per buffer
 * (each trip is two thread wake-ups, which on a busy machine cost more
 * than the copy). A client slower than that is waited for on the event
 * loop, which polls the duplicate for writability and queues the next
 * round then: a slow client holds no pool thread. `done` resolves to the bytes sent
 * (header included) or rejects with an Error carrying `code`, `syscall` and
 * `sent`. sendFileCancel(job) ends a job at its next step (ECANCELED): its
 * descriptors are closed, so a peer node has let go of sees the close.
 */

#define SEND_ROUND_BYTES (32 * 1024 * 1024)
#define SEND_POOL_WAIT_MS 2
/* What the event loop sends per poll callback, at most. */
#define SEND_LOOP_BYTES (4 * 1024 * 1024)
/* The copy's buffer: the size the loopback measurements favoured. */
#define SEND_COPY_BYTES (32 * 1024)

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_deferred deferred;
  napi_async_work work;
  int sock;
  int file;
  char *header;
  size_t header_len;
  size_t header_sent;
  int64_t offset;
  int64_t remaining;
  int64_t sent;
  /* With `copy`: the buffer, and its bytes read but not yet sent (they start at `offset`). */
  char *buffer;
  size_t buffered;
  size_t buffer_start;
  /* The system call the body's last step made, for an error's `syscall`. */
  const char *body_call;
  int err;
  const char *failed;
  /* The last round stopped on EAGAIN. */
  bool wait;
  bool polling;
  bool poll_init;
  bool working;
  bool cancelled;
  bool finished;
  /* The job's JavaScript handle and the running transfer each hold one. */
  int refs;
} SendJob;

static void send_free(SendJob *job) {
  free(job->header);
  free(job->buffer);
  free(job);
}

static void send_unref(SendJob *job) {
  if (--job->refs == 0) send_free(job);
}

/* A job that never started: its descriptors (those it has) closed and its memory freed. */
static void send_discard(SendJob *job) {
  if (job->sock >= 0) close(job->sock);
  if (job->file >= 0) close(job->file);
  send_free(job);
}

/*
 * Sends up to `want` bytes of the file from `offset` (a copy may send fewer,
 * or up to a buffer read earlier): like sendfile(2), the bytes sent, 0 when
 * the file ends early, or -1 with errno. The caller advances `offset`.
 */
static ssize_t send_body(SendJob *job, size_t want) {
  if (job->buffer == NULL) {
    off_t offset = (off_t)job->offset;
    job->body_call = "sendfile";
    return sendfile(job->sock, job->file, &offset, want);
  }
  if (job->buffered == 0) {
    job->body_call = "pread";
    ssize_t n = pread(job->file, job->buffer, want < SEND_COPY_BYTES ? want : SEND_COPY_BYTES, (off_t)job->offset);
    if (n <= 0) return n;
    job->buffered = (size_t)n;
    job->buffer_start = 0;
  }
  job->body_call = "send";
  ssize_t n = send(job->sock, job->buffer + job->buffer_start, job->buffered, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n > 0) {
    job->buffer_start += (size_t)n;
    job->buffered -= (size_t)n;
  }
  return n;
}

static void send_poll_closed(uv_handle_t *handle) {
  SendJob *job = handle->data;
  if (job->sock >= 0) close(job->sock);
  job->sock = -1;
  send_unref(job);
}

/* On a pool thread: true when the socket took room to write within SEND_POOL_WAIT_MS (or reports an error, which the next send returns). */
static bool send_pool_wait(SendJob *job) {
  if (__atomic_load_n(&job->cancelled, __ATOMIC_RELAXED)) return false;
  struct pollfd p = {.fd = job->sock, .events = POLLOUT};
  int rc;
  do rc = poll(&p, 1, SEND_POOL_WAIT_MS);
  while (rc < 0 && errno == EINTR);
  return rc > 0;
}

static void send_execute(napi_env env, void *data) {
  (void)env;
  SendJob *job = data;
  int64_t budget = SEND_ROUND_BYTES;
  job->wait = false;
  if (job->err != 0) return; /* failed on the event loop: this round only settles it */
  while (job->header_sent < job->header_len) {
    ssize_t n = send(job->sock, job->header + job->header_sent, job->header_len - job->header_sent, MSG_NOSIGNAL | MSG_DONTWAIT | (job->remaining > 0 ? MSG_MORE : 0));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (send_pool_wait(job)) continue;
        job->wait = true;
        return;
      }
      job->err = errno;
      job->failed = "send";
      return;
    }
    job->header_sent += (size_t)n;
    job->sent += n;
  }
  while (job->remaining > 0 && budget > 0) {
    size_t want = (size_t)(job->remaining < budget ? job->remaining : budget);
    if (want > 0x7ffff000) want = 0x7ffff000;
    ssize_t n = send_body(job, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (send_pool_wait(job)) continue;
        job->wait = true;
        return;
      }
      job->err = errno;
      job->failed = job->body_call;
      return;
    }
    if (n == 0) {
      /* The file is shorter than its blob should be: stop rather than spin. */
      job->err = EIO;
      job->failed = job->body_call;
      return;
    }
    job->offset += n;
    job->remaining -= n;
    job->sent += n;
    budget -= n;
  }
}

static void send_complete(napi_env env, napi_status status, void *data);

static void send_finish(napi_env env, SendJob *job) {
  job->finished = true;
  napi_delete_async_work(env, job->work);
  if (job->err == 0) {
    napi_value sent;
    napi_create_int64(env, job->sent, &sent);
    napi_resolve_deferred(env, job->deferred, sent);
  } else {
    napi_value error = errno_error(env, job->failed, job->err), sent;
    napi_create_int64(env, job->sent, &sent);
    napi_set_named_property(env, error, "sent", sent);
    napi_reject_deferred(env, job->deferred, error);
  }
  close(job->file);
  job->file = -1;
  if (job->poll_init) {
    if (job->polling) uv_poll_stop(&job->poll);
    job->polling = false;
    uv_close((uv_handle_t *)&job->poll, send_poll_closed);
  } else {
    close(job->sock);
    job->sock = -1;
    send_unref(job);
  }
}

/*
 * One async work for the whole job, queued again for each round: queueing
 * creates no JavaScript value, so the poll callback (which runs outside any
 * JavaScript scope) may do it.
 */
static bool send_queue(napi_env env, SendJob *job) {
  if (napi_queue_async_work(env, job->work) != napi_ok) return false;
  job->working = true;
  return true;
}

/*
 * Whether the next window of the file is in the page cache, so that the
 * event loop may send it itself without waiting on the disk: its first and
 * last bytes read with RWF_NOWAIT (which fails rather than wait for I/O).
 * A heuristic (readahead fills whole runs), and false where the kernel or
 * the filesystem cannot say.
 */
static bool send_window_cached(SendJob *job, int64_t window) {
#ifdef RWF_NOWAIT
  char byte;
  struct iovec v = {.iov_base = &byte, .iov_len = 1};
  if (preadv2(job->file, &v, 1, job->offset, RWF_NOWAIT) != 1) return false;
  return preadv2(job->file, &v, 1, job->offset + window - 1, RWF_NOWAIT) == 1;
#else
  (void)job;
  (void)window;
  return false;
#endif
}

/*
 * The socket has room. A cached window is sent right here on the event loop
 * (one wake-up per socket buffer, as Go's poller does for the reference;
 * sending a cached window costs about as much as queueing it); anything
 * that may read the disk goes to the pool. The poll stays on while the
 * loop sends, so a full socket just waits for the next callback. Settling
 * the promise needs a JavaScript scope, which a poll callback lacks: a
 * finished or failed job goes through one (empty) pool round for that.
 */
static void send_writable(uv_poll_t *handle, int status, int events) {
  (void)events;
  SendJob *job = handle->data;
  int64_t window = job->remaining < SEND_LOOP_BYTES ? job->remaining : SEND_LOOP_BYTES;
  if (status == 0 && job->header_sent == job->header_len && window > 0 && send_window_cached(job, window)) {
    while (window > 0) {
      ssize_t n = send_body(job, (size_t)window);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return; /* full: the next callback goes on */
      if (n <= 0) {
        job->err = n < 0 ? errno : EIO;
        job->failed = job->body_call;
        break;
      }
      job->offset += n;
      job->remaining -= n;
      job->sent += n;
      window -= n;
    }
    if (job->err == 0 && job->remaining > 0) return; /* the window is out; the next callback sends the next */
  }
  /* An error on the socket (status < 0) shows in the pool round's send as its errno. */
  uv_poll_stop(handle);
  job->polling = false;
  /* Queueing fails only for arguments napi rejects, which these are not. */
  send_queue(job->env, job);
}

static void send_complete(napi_env env, napi_status status, void *data) {
  SendJob *job = data;
  job->working = false;
  if (status != napi_ok && job->err == 0) {
    job->err = ECANCELED;
    job->failed = "sendfile";
  }
  if (job->cancelled && job->err == 0 && (job->remaining > 0 || job->header_sent < job->header_len)) {
    job->err = ECANCELED;
    job->failed = "sendfile";
  }
  if (job->err != 0 || (job->remaining == 0 && job->header_sent == job->header_len)) {
    send_finish(env, job);
    return;
  }
  if (!job->wait) {
    /* The round's budget is spent: let other work have the pool thread, then go on. */
    if (!send_queue(env, job)) {
      job->err = ENOMEM;
      job->failed = "sendFile";
      send_finish(env, job);
    }
    return;
  }
  if (!job->poll_init) {
    uv_loop_t *loop;
    int rc = napi_get_uv_event_loop(env, &loop) == napi_ok ? uv_poll_init(loop, &job->poll, job->sock) : UV_EINVAL;
    if (rc != 0) {
      job->err = -rc;
      job->failed = "uv_poll_init";
      send_finish(env, job);
      return;
    }
    job->poll.data = job;
    job->poll_init = true;
  }
  int rc = uv_poll_start(&job->poll, UV_WRITABLE, send_writable);
  if (rc != 0) {
    job->err = -rc;
    job->failed = "uv_poll_start";
    send_finish(env, job);
    return;
  }
  job->polling = true;
}

static void send_job_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  send_unref(data);
}

static napi_value send_file(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  static const char *usage = "sendFile(socketFd, header (Uint8Array|null), fileFd, offset, length, copy (boolean))";
  if (!get_args(env, info, 6, argv, usage)) return NULL;
  int32_t sock, file;
  int64_t offset, length;
  bool copy;
  if (napi_get_value_int32(env, argv[0], &sock) != napi_ok || sock < 0 || napi_get_value_int32(env, argv[2], &file) != napi_ok || file < 0 ||
      napi_get_value_int64(env, argv[3], &offset) != napi_ok || offset < 0 || napi_get_value_int64(env, argv[4], &length) != napi_ok || length < 0 ||
      napi_get_value_bool(env, argv[5], &copy) != napi_ok) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  void *header = NULL;
  size_t header_len = 0;
  napi_valuetype header_type;
  CHECK(napi_typeof(env, argv[1], &header_type));
  if (header_type != napi_null && header_type != napi_undefined) {
    napi_typedarray_type type;
    if (napi_get_typedarray_info(env, argv[1], &type, &header_len, &header, NULL, NULL) != napi_ok || type != napi_uint8_array) {
      napi_throw_type_error(env, NULL, usage);
      return NULL;
    }
  }
  SendJob *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_errno(env, "calloc", ENOMEM);
  job->sock = job->file = -1;
  job->header_len = header_len;
  job->offset = offset;
  job->remaining = length;
  job->env = env;
  if ((header_len > 0 && (job->header = malloc(header_len)) == NULL) || (copy && length > 0 && (job->buffer = malloc(SEND_COPY_BYTES)) == NULL)) {
    send_discard(job);
    return throw_errno(env, "malloc", ENOMEM);
  }
  if (header_len > 0) memcpy(job->header, header, header_len);
  job->sock = fcntl(sock, F_DUPFD_CLOEXEC, 0);
  if (job->sock >= 0) job->file = fcntl(file, F_DUPFD_CLOEXEC, 0);
  if (job->sock < 0 || job->file < 0) {
    int err = errno;
    send_discard(job);
    return throw_errno(env, "dup", err);
  }
  napi_value result, promise, external, name;
  job->refs = 2;
  if (napi_create_string_utf8(env, "berth.sendFile", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, send_execute, send_complete, job, &job->work) != napi_ok) {
    send_discard(job);
    napi_throw_error(env, NULL, "sendFile: could not start");
    return NULL;
  }
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok || napi_create_external(env, job, send_job_finalize, NULL, &external) != napi_ok) {
    napi_delete_async_work(env, job->work);
    send_discard(job);
    napi_throw_error(env, NULL, "sendFile: could not start");
    return NULL;
  }
  CHECK(napi_create_object(env, &result));
  CHECK(napi_set_named_property(env, result, "done", promise));
  CHECK(napi_set_named_property(env, result, "job", external));
  if (!send_queue(env, job)) {
    job->err = ENOMEM;
    job->failed = "sendFile";
    send_finish(env, job);
  }
  return result;
}

static napi_value send_file_cancel(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  SendJob *job = NULL;
  napi_valuetype type;
  if (!get_args(env, info, 1, argv, "sendFileCancel(job)")) return NULL;
  if (napi_typeof(env, argv[0], &type) != napi_ok || type != napi_external || napi_get_value_external(env, argv[0], (void **)&job) != napi_ok || job == NULL) {
    napi_throw_type_error(env, NULL, "sendFileCancel(job): job must come from sendFile()");
    return NULL;
  }
  if (job->finished || job->cancelled) return NULL;
  __atomic_store_n(&job->cancelled, true, __ATOMIC_RELAXED);
  /* A round on the pool ends on its own and sees the flag; a job waiting for the socket ends now. */
  if (!job->working) {
    job->err = ECANCELED;
    job->failed = "sendfile";
    send_finish(env, job);
  }
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
      {"sendFile", send_file},
      {"sendFileCancel", send_file_cancel},
  };
  for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++) {
    napi_value fn;
    napi_create_function(env, functions[i].name, NAPI_AUTO_LENGTH, functions[i].fn, NULL, &fn);
    napi_set_named_property(env, exports, functions[i].name, fn);
  }
  return exports;
}
