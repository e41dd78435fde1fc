/*
 * Berth's native helpers: what Node's own API does not offer.
 *
 * dupSocket(fd): a second descriptor for an accepted connection, so that the
 * thread that accepted it can close its handle while another thread adopts
 * the connection (`new net.Socket({ fd })`). Node cannot pass a socket to a
 * worker thread, only between processes.
 */
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <node_api.h>

static napi_value throw_errno(napi_env env, const char *syscall, int err) {
  char message[128];
  snprintf(message, sizeof message, "%s: %s", syscall, strerror(err));
  napi_throw_error(env, NULL, message);
  return NULL;
}

static napi_value dup_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "dupSocket(fd): fd must be a descriptor number");
    return NULL;
  }
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return throw_errno(env, "dup", errno);
  napi_value result;
  napi_create_int32(env, copy, &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "dupSocket", NAPI_AUTO_LENGTH, dup_socket, NULL, &fn);
  napi_set_named_property(env, exports, "dupSocket", fn);
  return exports;
}
