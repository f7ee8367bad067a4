/* gmr/_watchdog.h: the watchdog, a C thread that never takes the GIL.
 *
 * When a trigger has arrived and the watcher has been waiting for the GIL
 * longer than the limit (a C call is holding it), the watchdog writes a
 * degraded report where the full one would go: a header that says why, then
 * every thread's traceback written by faulthandler, which reads thread
 * states without the GIL. faulthandler is registered (from Python, with the
 * GIL) on a spare real-time signal and a file descriptor of ours; here that
 * descriptor is pointed at the target with dup2() and the signal is raised
 * at this very thread, so the dump runs synchronously, here.
 *
 * It also hurries the GIL back to the watcher (gmr/_switch.h): while the
 * watcher waits to take it back after a let-go, the holder is asked to let
 * go every GMR_ASK_EVERY_NS (then less often, see below).
 *
 * Plain C because it must never run Python code or take the GIL. All state
 * is guarded by gmr_wd_mutex.
 */
#ifndef GMR_WATCHDOG_H
#define GMR_WATCHDOG_H

#include "_publish.h"
#include "_switch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t gmr_wd_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gmr_wd_cond;
static pthread_t gmr_wd_thread;
static int gmr_wd_running = 0;
static long long gmr_wd_limit_ns = 1000000000LL;
/* When the watcher began waiting for the GIL (CLOCK_MONOTONIC ns), 0 if not. */
static long long gmr_wd_waiting_since = 0;
/* The real-time signal faulthandler is registered on, and its descriptor. */
static int gmr_wd_signal = 0;
static int gmr_wd_fd = -1;
/* What that descriptor was when it was given (st_dev, st_ino): the service
 * may close it and reuse the number, and gmr never dup2()s over a file that
 * is not its own. */
static dev_t gmr_wd_fd_dev = 0;
static ino_t gmr_wd_fd_ino = 0;
/* Where the full report would go: a directory, or "" for stderr. */
static char gmr_wd_directory[PATH_MAX];
static char gmr_wd_prefix[256];
static unsigned long gmr_wd_dumps = 0;
/* How the holder of the GIL is asked to let go (the walker's; NULL: it
 * cannot be), and whether the watcher waits for the GIL after a let-go. */
static unsigned long (*gmr_wd_ask)(unsigned long unless) = NULL;
static int gmr_wd_hurrying = 0;
/* The watcher's thread (pthread id): the one thread never asked. */
static unsigned long gmr_wd_hurry_for = 0;
/* When the GIL last moved while the watcher waits for it back
 * (CLOCK_MONOTONIC ns), and its switch number then. */
static long long gmr_wd_hurry_since = 0;
static unsigned long gmr_wd_switches = 0;

/* The holder is asked every GMR_ASK_EVERY_NS, enough for one busy thread
 * after another to let go, for as long as the GIL moves: each busy thread
 * that takes it before the watcher (the GIL is not handed in order) is asked
 * in turn. Once nobody has taken it for GMR_ASK_OFTEN_NS (a C call holds it
 * and never checks), once a millisecond, which costs nothing. */
#define GMR_ASK_EVERY_NS 50000LL
#define GMR_ASK_OFTEN_NS 2000000LL
#define GMR_ASK_SELDOM_NS 1000000LL

static long long
gmr_wd_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* 0, or an errno (a full disk: ENOSPC; past RLIMIT_FSIZE: EFBIG). */
static int
gmr_wd_write(int fd, const char *text)
{
    return gmr_write_all(fd, text, strlen(text));
}

/* 1 when fd is still the file gmr gave faulthandler (/dev/null between
 * reports), by identity; the number alone proves nothing. */
static int
gmr_wd_owns(int fd)
{
    struct stat status;
    if (fd < 0 || fstat(fd, &status) != 0) {
        return 0;
    }
    return status.st_dev == gmr_wd_fd_dev && status.st_ino == gmr_wd_fd_ino;
}

/* Write one degraded report. Called in the watchdog thread, mutex not held. */
static void
gmr_wd_dump(long long waited_ns, int signum, int target_fd)
{
    char base[PATH_MAX + 512], temporary[PATH_MAX + 600], final[PATH_MAX + 600];
    char header[PATH_MAX + 512];
    int fd = 2, to_file = gmr_wd_directory[0] != '\0';
    int devnull, error = 0;

    if (to_file) {
        /* Named and published as every report is (gmr/_publish.h). */
        fd = -1;
        if (gmr_report_base(base, sizeof(base), gmr_wd_directory, gmr_wd_prefix, "_degraded") == 0) {
            fd = gmr_publish_begin(base, temporary, sizeof(temporary));
        }
        if (fd < 0) {
            /* errno, not strerror(): strerror is not thread-safe. */
            snprintf(header, sizeof(header),
                     "gmr: cannot write a degraded report in %s: errno %d\n", gmr_wd_directory,
                     errno);
            (void)gmr_wd_write(2, header);
            fd = 2;
            to_file = 0;
        }
    }
    snprintf(header, sizeof(header),
             "========================================================================\n"
             "====               Guru Meditation (DEGRADED REPORT)                ====\n"
             "========================================================================\n"
             "The GIL has not been available for %lld ms: a C call is holding it.\n"
             "These stacks were read without the GIL (faulthandler); the full report\n"
             "follows once the GIL is free.\n\n",
             waited_ns / 1000000LL);
    error = gmr_wd_write(fd, header);
    if (!gmr_wd_owns(target_fd)) {
        error = error ? error
                      : gmr_wd_write(fd, "faulthandler's descriptor was closed by the service: "
                                         "no stacks here.\n");
    }
    else if (dup2(fd, target_fd) >= 0) {
        /* faulthandler's handler runs here, synchronously, and writes to target_fd. */
        pthread_kill(pthread_self(), signum);
        devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (devnull >= 0) {
            dup2(devnull, target_fd);
            close(devnull);
        }
    }
    /* faulthandler's own writes are not seen here; a short one leaves the
     * file short of room, and the end line (or fsync) then fails too. */
    error = error ? error : gmr_wd_write(fd, "\n==== end of degraded report ====\n");
    if (to_file) {
        if (fsync(fd) != 0 && error == 0) {
            error = errno;
        }
        if (close(fd) != 0 && error == 0 && errno != EINTR) {
            error = errno;
        }
        if (error) {
            /* A report is whole or not published. */
            unlink(temporary);
            snprintf(header, sizeof(header),
                     "gmr: degraded report not written in %s: errno %d\n", gmr_wd_directory,
                     error);
            (void)gmr_wd_write(2, header);
        }
        else {
            gmr_publish_finish(temporary, base, final, sizeof(final));
        }
    }
}

/* Until when to sleep: the next ask while hurrying, the end of the limit
 * while a trigger waits for the GIL (not dumped yet), or for ever (0). */
static long long
gmr_wd_next(long long now, long long episode, int dumped)
{
    long long next = 0;
    if (gmr_wd_hurrying && gmr_wd_ask != NULL) {
        next = now + (now - gmr_wd_hurry_since < GMR_ASK_OFTEN_NS ? GMR_ASK_EVERY_NS
                                                                  : GMR_ASK_SELDOM_NS);
    }
    if (episode != 0 && !dumped && (next == 0 || episode + gmr_wd_limit_ns < next)) {
        next = episode + gmr_wd_limit_ns;
    }
    return next;
}

static void *
gmr_wd_main(void *unused)
{
    sigset_t blocked;
    long long episode = 0, now, next;
    int dumped = 0;
    (void)unused;
    /* Only faulthandler's signal may land here: the service's signals
     * (SIGUSR2 included) go to threads that can serve them. */
    sigfillset(&blocked);
    sigdelset(&blocked, gmr_wd_signal);
    pthread_sigmask(SIG_SETMASK, &blocked, NULL);
#ifdef PR_SET_TIMERSLACK
    /* Its naps between two asks are 50 us: without this, the kernel may
     * let each run 50 us late (the default slack of a thread). */
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
#endif
    pthread_mutex_lock(&gmr_wd_mutex);
    while (gmr_wd_running) {
        if (gmr_wd_waiting_since != episode) {  /* a new wait, or none */
            episode = gmr_wd_waiting_since;
            dumped = 0;
        }
        now = gmr_wd_now();
        if (gmr_wd_hurrying && gmr_wd_ask != NULL) {
            unsigned long (*ask)(unsigned long) = gmr_wd_ask;
            unsigned long unless = gmr_wd_hurry_for, switches;
            pthread_mutex_unlock(&gmr_wd_mutex);
            switches = ask(unless);
            pthread_mutex_lock(&gmr_wd_mutex);
            if (switches != gmr_wd_switches) {
                /* The GIL moved since the last ask: a busy thread let go and
                 * another took it before the watcher. Keep asking often. */
                gmr_wd_switches = switches;
                gmr_wd_hurry_since = now;
            }
        }
        if (episode != 0 && !dumped && now >= episode + gmr_wd_limit_ns) {
            int signum = gmr_wd_signal, fd = gmr_wd_fd;
            /* One degraded report per stuck episode. */
            dumped = 1;
            gmr_wd_dumps++;
            pthread_mutex_unlock(&gmr_wd_mutex);
            gmr_wd_dump(now - episode, signum, fd);
            pthread_mutex_lock(&gmr_wd_mutex);
            continue;
        }
        next = gmr_wd_next(now, episode, dumped);
        if (next == 0) {
            pthread_cond_wait(&gmr_wd_cond, &gmr_wd_mutex);
        }
        else {
            struct timespec until;
            until.tv_sec = (time_t)(next / 1000000000LL);
            until.tv_nsec = (long)(next % 1000000000LL);
            pthread_cond_timedwait(&gmr_wd_cond, &gmr_wd_mutex, &until);
        }
    }
    pthread_mutex_unlock(&gmr_wd_mutex);
    return NULL;
}

/* Start the watchdog (or update it when running). Returns 0 or an errno. */
static int
gmr_wd_start(long long limit_ns, int signum, int fd)
{
    int error = 0;
    pthread_mutex_lock(&gmr_wd_mutex);
    gmr_wd_limit_ns = limit_ns;
    gmr_wd_signal = signum;
    gmr_wd_fd = fd;
    {
        struct stat status;
        if (fstat(fd, &status) == 0) {
            gmr_wd_fd_dev = status.st_dev;
            gmr_wd_fd_ino = status.st_ino;
        }
    }
    if (!gmr_wd_running) {
        pthread_condattr_t attributes;
        sigset_t all, previous;
        pthread_condattr_init(&attributes);
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC);
        pthread_cond_init(&gmr_wd_cond, &attributes);
        pthread_condattr_destroy(&attributes);
        gmr_wd_waiting_since = 0;
        gmr_wd_running = 1;
        /* Created with every signal blocked, so none lands in it before
         * gmr_wd_main sets its mask. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &previous);
        error = pthread_create(&gmr_wd_thread, NULL, gmr_wd_main, NULL);
        pthread_sigmask(SIG_SETMASK, &previous, NULL);
        if (error) {
            gmr_wd_running = 0;
        } else {
            /* The name top -H, ps -L and /proc/<pid>/task/<tid>/comm show,
             * given before this returns: no one sees the thread unnamed. */
            pthread_setname_np(gmr_wd_thread, "gmr-watchdog");
        }
    }
    pthread_mutex_unlock(&gmr_wd_mutex);
    return error;
}

static void
gmr_wd_stop(void)
{
    int was_running;
    pthread_mutex_lock(&gmr_wd_mutex);
    was_running = gmr_wd_running;
    gmr_wd_running = 0;
    pthread_cond_broadcast(&gmr_wd_cond);
    pthread_mutex_unlock(&gmr_wd_mutex);
    if (was_running) {
        pthread_join(gmr_wd_thread, NULL);
    }
}

/* A forked child has no watchdog thread: forget the parent's, without
 * joining a thread that does not exist here. */
static void
gmr_wd_forget(void)
{
    pthread_mutex_init(&gmr_wd_mutex, NULL);
    gmr_wd_running = 0;
    gmr_wd_waiting_since = 0;
    gmr_wd_hurrying = 0;
}

static void
gmr_wd_set_target(const char *directory, const char *prefix)
{
    pthread_mutex_lock(&gmr_wd_mutex);
    snprintf(gmr_wd_directory, sizeof(gmr_wd_directory), "%s", directory);
    snprintf(gmr_wd_prefix, sizeof(gmr_wd_prefix), "%s", prefix);
    pthread_mutex_unlock(&gmr_wd_mutex);
}

/* The watcher is about to take the GIL to serve a trigger (called without it). */
static void
gmr_wd_waiting(int waiting)
{
    pthread_mutex_lock(&gmr_wd_mutex);
    if (gmr_wd_running) {
        gmr_wd_waiting_since = waiting ? gmr_wd_now() : 0;
        pthread_cond_broadcast(&gmr_wd_cond);
    }
    pthread_mutex_unlock(&gmr_wd_mutex);
}

/* How the holder of the GIL is asked to let go (set once, from the walker). */
static void
gmr_wd_use_ask(unsigned long (*ask)(unsigned long))
{
    pthread_mutex_lock(&gmr_wd_mutex);
    gmr_wd_ask = ask;
    pthread_mutex_unlock(&gmr_wd_mutex);
}

/* Whether a let-go is hurried: the holder can be asked, and this thread
 * runs to ask it again until the GIL is back. */
static int
gmr_wd_can_hurry(void)
{
    int can;
    pthread_mutex_lock(&gmr_wd_mutex);
    can = gmr_wd_running && gmr_wd_ask != NULL;
    pthread_mutex_unlock(&gmr_wd_mutex);
    return can;
}

/* gmr/_switch.h: the watcher is about to take the GIL back (no GIL): the
 * holder asked at once, then every GMR_ASK_EVERY_NS until gmr_wd_hurried. */
static void
gmr_wd_hurry(void)
{
    unsigned long (*ask)(unsigned long);
    unsigned long me = (unsigned long)pthread_self();
    pthread_mutex_lock(&gmr_wd_mutex);
    ask = gmr_wd_running ? gmr_wd_ask : NULL;
    if (ask != NULL) {
        gmr_wd_hurrying = 1;
        gmr_wd_hurry_for = me;
        gmr_wd_hurry_since = gmr_wd_now();
        pthread_cond_broadcast(&gmr_wd_cond);
    }
    pthread_mutex_unlock(&gmr_wd_mutex);
    if (ask != NULL) {
        ask(me);
    }
}

/* The watcher holds the GIL again. */
static void
gmr_wd_hurried(void)
{
    pthread_mutex_lock(&gmr_wd_mutex);
    gmr_wd_hurrying = 0;
    pthread_mutex_unlock(&gmr_wd_mutex);
}

static const gmr_hurry_calls gmr_wd_hurry_calls = {gmr_wd_hurry, gmr_wd_hurried};

static unsigned long
gmr_wd_dump_count(void)
{
    unsigned long dumps;
    pthread_mutex_lock(&gmr_wd_mutex);
    dumps = gmr_wd_dumps;
    pthread_mutex_unlock(&gmr_wd_mutex);
    return dumps;
}

#endif /* GMR_WATCHDOG_H */
