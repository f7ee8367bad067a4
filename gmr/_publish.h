/* gmr/_publish.h: a report's file name and its atomic write, in one place.
 *
 * Used by gmr/_files.pyx (publish(), for every full report) and by the
 * watchdog (gmr/_watchdog.h, for a degraded report), so both name their
 * files alike and both make them appear whole:
 *
 *   <directory>/<prefix>_gurumeditation_<YYYYmmddHHMMSS, UTC><suffix>
 *
 * written first under a hidden temporary name in the same directory, then
 * linked to that name, or to name.1, name.2, ... when it is taken: link()
 * fails rather than replace, so an earlier report is never overwritten.
 *
 * Plain C with no Python calls: the watchdog runs it without the GIL, and
 * publish() lets the GIL go around it. Every function keeps to its buffers.
 */
#ifndef GMR_PUBLISH_H
#define GMR_PUBLISH_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GMR_MARK "_gurumeditation_"
/* Names taken in one second before giving up (".1" ... ".9999"). */
#define GMR_MAX_ATTEMPTS 10000

/* Write all of data to fd. 0, or an errno (ENOSPC: the disk is full). */
static int
gmr_write_all(int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t wrote = write(fd, data, size);
        if (wrote < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        if (wrote == 0) {
            return EIO;
        }
        data += wrote;
        size -= (size_t)wrote;
    }
    return 0;
}

/* The final name without its ".N": directory/prefix_gurumeditation_stamp suffix.
 * 0, or ENAMETOOLONG. */
static int
gmr_report_base(char *out, size_t size, const char *directory, const char *prefix,
                const char *suffix)
{
    char stamp[32];
    struct tm utc;
    time_t now = time(NULL);
    int length;

    gmtime_r(&now, &utc);
    strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &utc);
    length = snprintf(out, size, "%s/%s" GMR_MARK "%s%s", directory, prefix, stamp, suffix);
    return (length < 0 || (size_t)length >= size) ? ENAMETOOLONG : 0;
}

/* Create the hidden temporary file for a report whose final name is base:
 * directory/.<basename>.<pid>.<ns>.tmp, mode 0600, never an existing file.
 * Returns the descriptor (temporary filled in), or -1 with errno set. */
static int
gmr_publish_begin(const char *base, char *temporary, size_t size)
{
    const char *slash = strrchr(base, '/');
    struct timespec now;
    int length, fd;

    clock_gettime(CLOCK_MONOTONIC, &now);
    length = slash == NULL
        ? snprintf(temporary, size, ".%s.%ld.%lld.tmp", base, (long)getpid(),
                   (long long)now.tv_sec * 1000000000LL + now.tv_nsec)
        : snprintf(temporary, size, "%.*s/.%s.%ld.%lld.tmp", (int)(slash - base), base,
                   slash + 1, (long)getpid(),
                   (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
    if (length < 0 || (size_t)length >= size) {
        errno = ENAMETOOLONG;
        return -1;
    }
    do {
        fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

/* Misses in a row after which no later name of this second is looked for. */
#define GMR_GAP 16

/* The first suffix above every name of this second still there: retention
 * deletes the oldest first, and a freed lower name is never given again
 * (it would sort as older than the reports after it). 0 when none is. */
static int
gmr_first_free(const char *base, char *name, size_t size)
{
    int attempt, first = 0, misses = 0;
    for (attempt = 0; attempt < GMR_MAX_ATTEMPTS && misses < GMR_GAP; attempt++) {
        int length = attempt == 0 ? snprintf(name, size, "%s", base)
                                  : snprintf(name, size, "%s.%d", base, attempt);
        if (length < 0 || (size_t)length >= size) {
            break;
        }
        if (access(name, F_OK) == 0) {
            first = attempt + 1;
            misses = 0;
        }
        else {
            misses++;
        }
    }
    return first;
}

/* Give the temporary file its final name: base, or base.1, base.2, ...,
 * the first free one above every name of this second (name filled in); the temporary name is removed either
 * way. 0, or an errno (EEXIST: every name taken). */
static int
gmr_publish_finish(const char *temporary, const char *base, char *name, size_t size)
{
    int attempt, error = EEXIST;

    for (attempt = gmr_first_free(base, name, size); attempt < GMR_MAX_ATTEMPTS; attempt++) {
        int length = attempt == 0 ? snprintf(name, size, "%s", base)
                                  : snprintf(name, size, "%s.%d", base, attempt);
        if (length < 0 || (size_t)length >= size) {
            error = ENAMETOOLONG;
            break;
        }
        if (link(temporary, name) == 0) {
            error = 0;
            break;
        }
        if (errno != EEXIST) {
            error = errno;
            break;
        }
    }
    unlink(temporary);
    return error;
}

/* One step of a report written a batch at a time, for a caller that lets
 * the GIL go once per batch: the first step (*fd < 0) creates the temporary
 * file, each step writes its count pieces, and the last one closes the file
 * and gives it its name (name filled in). 0, or an errno; *stage says where
 * it failed: 0 creating the temporary file, 1 writing it, 2 naming it. After
 * the last step or an error, *fd is closed (-1) and the temporary name gone:
 * a cut report never gets a report's name. */
static int
gmr_publish_step(int *fd, const char *base, char *temporary, size_t temporary_size,
                 const char *const *data, const size_t *sizes, size_t count, int last,
                 char *name, size_t size, int *stage)
{
    int error = 0;
    size_t i;

    if (*fd < 0) {
        *stage = 0;
        *fd = gmr_publish_begin(base, temporary, temporary_size);
        if (*fd < 0) {
            return errno;
        }
    }
    *stage = 1;
    for (i = 0; i < count && error == 0; i++) {
        error = gmr_write_all(*fd, data[i], sizes[i]);
    }
    if (error == 0 && !last) {
        return 0;
    }
    if (close(*fd) < 0 && error == 0 && errno != EINTR) {
        error = errno;
    }
    *fd = -1;
    if (error) {
        unlink(temporary);
        return error;
    }
    *stage = 2;
    return gmr_publish_finish(temporary, base, name, size);
}

/* The whole of it for data in memory (the watchdog's degraded report): a
 * new report file holding data; as gmr_publish_step's one and last step. */
static int
gmr_publish(const char *base, const char *data, size_t length, char *name, size_t size,
            int *stage)
{
    char temporary[4096 + 64];
    int fd = -1;

    return gmr_publish_step(&fd, base, temporary, sizeof(temporary), &data, &length, 1, 1,
                            name, size, stage);
}

#endif /* GMR_PUBLISH_H */
