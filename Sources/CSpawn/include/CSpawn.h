#ifndef SHIP_CSPAWN_H
#define SHIP_CSPAWN_H
#include <spawn.h>

/// posix_spawn_file_actions_addchdir_np (glibc >= 2.29), which Swift cannot see without _GNU_SOURCE.
int ship_spawn_file_actions_addchdir(posix_spawn_file_actions_t *actions, const char *path);

#endif
