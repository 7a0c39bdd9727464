/*
 * smoothd_init: the two system calls smoothd needs to act as PID 1 (DESIGN §12)
 * and that Node has no binding for.
 *
 *   setChildSubreaper()  prctl(PR_SET_CHILD_SUBREAPER, 1): orphans of smoothd's
 *                        workers reparent to smoothd instead of PID 1.
 *                        Returns true, or throws with errno's text.
 *   reap(pid)            waitpid(pid, WNOHANG) for that ONE pid. Returns
 *                        {pid, code, signal} once it is reaped, or null when
 *                        it has not exited or is not smoothd's child.
 *
 * There is deliberately no waitpid(-1): libuv waits for the children it
 * spawned by their pids, and reaping one of those would take its exit away
 * from Node. smoothd passes only pids it knows libuv did not spawn.
 *
 * Node-API only (NAPI_VERSION 8): one build loads in Node 20, 22 and 24.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value set_child_subreaper(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) return throw_errno(env, "prctl(PR_SET_CHILD_SUBREAPER)", errno);
  napi_value t;
  napi_get_boolean(env, true, &t);
  return t;
}

static napi_value reap(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t pid = 0;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &pid) != napi_ok || pid <= 0) {
    napi_throw_type_error(env, NULL, "reap(pid) needs one positive integer pid");
    return NULL;
  }
  int status = 0;
  pid_t got;
  do got = waitpid((pid_t)pid, &status, WNOHANG); while (got == -1 && errno == EINTR);
  napi_value result;
  if (got <= 0) {
    /* 0: still running; -1 (ECHILD): not our child or already reaped. */
    napi_get_null(env, &result);
    return result;
  }
  napi_create_object(env, &result);
  napi_value v;
  napi_create_int32(env, got, &v);
  napi_set_named_property(env, result, "pid", v);
  if (WIFEXITED(status)) napi_create_int32(env, WEXITSTATUS(status), &v); else napi_get_null(env, &v);
  napi_set_named_property(env, result, "code", v);
  if (WIFSIGNALED(status)) napi_create_int32(env, WTERMSIG(status), &v); else napi_get_null(env, &v);
  napi_set_named_property(env, result, "signal", v);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "setChildSubreaper", NAPI_AUTO_LENGTH, set_child_subreaper, NULL, &fn);
  napi_set_named_property(env, exports, "setChildSubreaper", fn);
  napi_create_function(env, "reap", NAPI_AUTO_LENGTH, reap, NULL, &fn);
  napi_set_named_property(env, exports, "reap", fn);
  return exports;
}
