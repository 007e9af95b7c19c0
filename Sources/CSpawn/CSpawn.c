#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <spawn.h>
#include <unistd.h>
#include "CSpawn.h"

int ship_spawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

int ship_spawn_file_actions_closefrom(posix_spawn_file_actions_t *actions, int from) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
#else
    (void)actions;
    (void)from;
    return 0;
#endif
}

int ship_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int ship_set_child_subreaper(void) {
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

int ship_is_static_executable(void) {
    return getauxval(AT_BASE) == 0;
}

long ship_copy_file_range(int input, int output, unsigned long length) {
    return (long)copy_file_range(input, NULL, output, NULL, length, 0);
}

int ship_memfd(const char *name) {
    return memfd_create(name, MFD_CLOEXEC);
}

int ship_open_nofollow(int dirfd, const char *name, int directory) {
    return openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
}

int ship_open_directory_nofollow(int dirfd, const char *name) {
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

int ship_fchown_fd(int fd, unsigned int uid, unsigned int gid) {
    return fchownat(fd, "", (uid_t)uid, (gid_t)gid, AT_EMPTY_PATH);
}
