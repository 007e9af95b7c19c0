#ifndef SHIP_CSPAWN_H
#define SHIP_CSPAWN_H
#include <spawn.h>

/// posix_spawn_file_actions_addchdir_np (glibc >= 2.29), which Swift cannot see without _GNU_SOURCE.
int ship_spawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path);
/// posix_spawn_file_actions_addclosefrom_np (glibc >= 2.34): the child keeps only the
/// descriptors below `from`, whatever else its parent (a test runner, a library) left open
/// without close-on-exec. A no-op where the C library lacks it (the static agent's musl), whose
/// own descriptors are all opened close-on-exec.
int ship_spawn_file_actions_closefrom(posix_spawn_file_actions_t *actions, int from);

/// pipe2(fds, O_CLOEXEC): both ends close-on-exec, atomically.
int ship_pipe_cloexec(int fds[2]);

/// prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are reparented to this process,
/// so the agent can reap what a killed hook left behind.
int ship_set_child_subreaper(void);

/// 1 when no program interpreter (dynamic loader) was loaded for this process: a static executable.
int ship_is_static_executable(void);

/// copy_file_range(2) of `length` bytes from the current offsets: a copy inside the kernel
/// (glibc >= 2.27 emulates it where the kernel lacks it). Returns bytes copied, or -1 and errno.
long ship_copy_file_range(int input, int output, unsigned long length);

/// memfd_create(name, MFD_CLOEXEC): a file in memory, for a child's messages when the disk is full.
int ship_memfd(const char *name);

#endif

// The descriptor of `name` in `dirfd` itself (O_PATH), never following a symlink; with
// `directory`, only if it is a directory.
int ship_open_nofollow(int dirfd, const char *name, int directory);

// A directory below `dirfd` opened for reading its entries, never through a symlink.
int ship_open_directory_nofollow(int dirfd, const char *name);

// Owner and group of exactly the file an O_PATH descriptor holds ((unsigned)-1: unchanged).
int ship_fchown_fd(int fd, unsigned int uid, unsigned int gid);
