/* gmr/_read.h: a whole small file read in plain C, without the GIL: the
 * files unit's batched reads, and the trigger's reads on a wake-up (what a
 * report needs and can have before the watcher takes the GIL back). */
#ifndef GMR_READ_H
#define GMR_READ_H

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

/* The file's bytes in a malloc'd buffer (*size set), at most limit of them,
 * or NULL. /proc files say they are empty: this reads until end of file. */
static char *
gmr_read_whole(const char *path, ssize_t limit, ssize_t *size)
{
    int fd;
    ssize_t capacity = 4096, got;
    char *grown, *buffer = (char *)malloc((size_t)capacity);
    *size = 0;
    if (buffer == NULL) {
        return NULL;
    }
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        free(buffer);
        return NULL;
    }
    while (*size < limit) {
        if (*size == capacity) {
            grown = (char *)realloc(buffer, (size_t)capacity * 2);
            if (grown == NULL) {
                break;  /* keep what was read */
            }
            buffer = grown;
            capacity *= 2;
        }
        got = read(fd, buffer + *size, (size_t)((capacity < limit ? capacity : limit) - *size));
        if (got > 0) {
            *size += got;
        }
        else if (got == 0) {
            break;
        }
        else if (errno != EINTR) {
            free(buffer);
            buffer = NULL;
            break;
        }
    }
    close(fd);
    return buffer;
}

#endif /* GMR_READ_H */
