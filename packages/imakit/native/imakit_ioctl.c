/*
 * imakit_ioctl: the one ioctl imakit needs that Node cannot issue, FS_IOC_GETVERSION (the inode
 * generation, i_generation), which EVM hashes into h_misc (formats.md §4.3, pitfall 20).
 *
 * getVersion(path) opens the path O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC (no symlink following,
 * no blocking on FIFOs; callers only pass regular files and directories), issues the ioctl and
 * returns the generation as an unsigned 32-bit number. On failure it throws an Error whose `errno`
 * property is the positive errno (ENOTTY/EOPNOTSUPP when the filesystem has no generation, e.g.
 * tmpfs or overlayfs). The JavaScript side maps errno numbers to names.
 *
 * getVersionFd(fd) issues the same ioctl on a descriptor the caller already holds: labellers read
 * the generation of the very file they hash and write (no path lookup a symlink could redirect).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <node_api.h>

#define CHECK(env, call)                                      \
  do {                                                        \
    if ((call) != napi_ok) {                                  \
      napi_throw_error((env), NULL, "N-API call failed");     \
      return NULL;                                            \
    }                                                         \
  } while (0)

static napi_value throw_errno(napi_env env, int err, const char *what) {
  napi_value msg, error, num;
  char buf[256];
  snprintf(buf, sizeof buf, "%s: %s", what, strerror(err));
  CHECK(env, napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &msg));
  CHECK(env, napi_create_error(env, NULL, msg, &error));
  CHECK(env, napi_create_int32(env, err, &num));
  CHECK(env, napi_set_named_property(env, error, "errno", num));
  napi_throw(env, error);
  return NULL;
}

static napi_value get_version(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "path required");
    return NULL;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "path must be a string");
    return NULL;
  }
  char *path = malloc(len + 1);
  if (path == NULL) return throw_errno(env, ENOMEM, "malloc");
  if (napi_get_value_string_utf8(env, argv[0], path, len + 1, NULL) != napi_ok) {
    free(path);
    napi_throw_error(env, NULL, "cannot read path");
    return NULL;
  }
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  free(path);
  if (fd < 0) return throw_errno(env, errno, "open");
  /* the kernel writes an int (ext4_ioctl: put_user(inode->i_generation, (int __user *)arg)) */
  int generation = 0;
  int rc = ioctl(fd, FS_IOC_GETVERSION, &generation);
  int err = errno;
  close(fd);
  if (rc < 0) return throw_errno(env, err, "ioctl(FS_IOC_GETVERSION)");
  napi_value result;
  CHECK(env, napi_create_uint32(env, (uint32_t)generation, &result));
  return result;
}

static napi_value get_version_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd = -1;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "fd must be a non-negative integer");
    return NULL;
  }
  int generation = 0;
  if (ioctl(fd, FS_IOC_GETVERSION, &generation) < 0) return throw_errno(env, errno, "ioctl(FS_IOC_GETVERSION)");
  napi_value result;
  CHECK(env, napi_create_uint32(env, (uint32_t)generation, &result));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  CHECK(env, napi_create_function(env, "getVersionFd", NAPI_AUTO_LENGTH, get_version_fd, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "getVersionFd", fn));
  CHECK(env, napi_create_function(env, "getVersion", NAPI_AUTO_LENGTH, get_version, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "getVersion", fn));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
