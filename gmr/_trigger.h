/* gmr/_trigger.h: what turns a signal into a wake-up of the watcher.
 *
 * 0. The channel: a semaphore in gmr's own memory, not a self-pipe. A
 *    service may close every descriptor it did not open (os.closerange after
 *    set-up, a daemonising library) and reuse the numbers, or dup2 its own
 *    files over them: a pipe's numbers would then be the service's socket or
 *    file, and the handler would write into it, the watcher read from it. A
 *    semaphore has no number to lose; sem_post() is async-signal-safe.
 * 1. The signal handler. It is C rather than Cython because Cython may put
 *    calls that take the GIL (line tracing in debug builds, refnanny) into any
 *    function it generates, and a signal handler may only call
 *    async-signal-safe functions.
 * 2. The wait on the channel, without the GIL.
 * (The GIL taken back at once after a wake-up: gmr/_switch.h, gmr/_watchdog.h.)
 */
#ifndef GMR_TRIGGER_H
#define GMR_TRIGGER_H

#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef NSIG
#  define NSIG 65
#endif

/* ------------------------------------------------------------------------ */
/* Signal handler                                                           */
/* ------------------------------------------------------------------------ */

/* Every signal the handler saw, for coalescing counts. Updated with an atomic
 * add, which is lock-free and so async-signal-safe. */
static unsigned long gmr_signals = 0;

/* A channel: what wakes one watcher, and why. Each kind of wake-up is
 * counted (atomic adds); the reader remembers what it has seen. */
typedef struct {
    sem_t wake;
    unsigned long posted[4];   /* by kind, see gmr_kind */
    unsigned long seen[4];     /* the reader's own, no atomics needed */
    int open;
} gmr_channel;

/* The channel the handler posts to (NULL: none); set with gmr_arm. */
static gmr_channel *volatile gmr_armed_channel = NULL;
/* The process that armed the handler: a forked child inherits the handler
 * and must not wake a watcher that exists only in its parent. */
static volatile pid_t gmr_armed_pid = 0;

/* Kinds of wake-up, as the watcher names them: a signal, an API request,
 * quit, a plain wake (to take up new settings). */
static const char gmr_kinds[4] = {'S', 'A', 'Q', 'W'};

static int
gmr_kind(char byte)
{
    int kind;
    for (kind = 0; kind < 4; kind++) {
        if (gmr_kinds[kind] == byte) {
            return kind;
        }
    }
    return -1;
}

/* Async-signal-safe: an atomic add and sem_post(). */
static void
gmr_channel_post(gmr_channel *channel, int kind)
{
    if (channel == NULL || !channel->open || kind < 0) {
        return;
    }
    __atomic_add_fetch(&channel->posted[kind], 1, __ATOMIC_RELEASE);
    /* EOVERFLOW: the count is at its maximum, a wake-up is pending anyway. */
    (void)sem_post(&channel->wake);
}

/* 0, or an errno. */
static int
gmr_channel_open(gmr_channel *channel)
{
    memset(channel, 0, sizeof(*channel));
    if (sem_init(&channel->wake, 0, 0) != 0) {
        return errno;
    }
    channel->open = 1;
    return 0;
}

static void
gmr_channel_close(gmr_channel *channel)
{
    if (channel->open) {
        channel->open = 0;
        sem_destroy(&channel->wake);
    }
}

/* Without the GIL: wait until something is posted or timeout_ms passes
 * (-1: for ever). 1 woken, 0 timed out, -1 error (errno set). Further
 * posts already made are taken with it (one wake-up for a storm). */
static int
gmr_channel_wait(gmr_channel *channel, int timeout_ms)
{
    int got;
    if (timeout_ms < 0) {
        do {
            got = sem_wait(&channel->wake);
        } while (got != 0 && errno == EINTR);
    }
    else {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += timeout_ms / 1000;
        until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec += 1;
            until.tv_nsec -= 1000000000L;
        }
        do {
            got = timeout_ms == 0 ? sem_trywait(&channel->wake)
                                  : sem_timedwait(&channel->wake, &until);
        } while (got != 0 && errno == EINTR);
        if (got != 0 && (errno == ETIMEDOUT || errno == EAGAIN)) {
            return 0;
        }
    }
    if (got != 0) {
        return -1;
    }
    while (sem_trywait(&channel->wake) == 0) {
    }
    return 1;
}

/* What was posted since the last call, as bytes into out (at most size):
 * one byte per post, kinds in order. Returns how many. */
static size_t
gmr_channel_take(gmr_channel *channel, char *out, size_t size)
{
    size_t used = 0;
    int kind;
    for (kind = 0; kind < 4; kind++) {
        unsigned long posted = __atomic_load_n(&channel->posted[kind], __ATOMIC_ACQUIRE);
        while (channel->seen[kind] != posted && used < size) {
            out[used++] = gmr_kinds[kind];
            channel->seen[kind]++;
        }
        channel->seen[kind] = posted;  /* past size: counted as seen */
    }
    return used;
}
/* The action each signal had before gmr, to chain to and to restore. */
static struct sigaction gmr_previous[NSIG];
static volatile sig_atomic_t gmr_has_previous[NSIG];

static void gmr_signal_handler(int signum, siginfo_t *info, void *context);

/* Call the handler that was in place before gmr, if it is a real function.
 * Never SIG_DFL (for SIGUSR2 that would terminate the process) nor SIG_IGN. */
static void
gmr_chain(int signum, siginfo_t *info, void *context)
{
    struct sigaction *previous;
    if (signum <= 0 || signum >= NSIG || !gmr_has_previous[signum]) {
        return;
    }
    previous = &gmr_previous[signum];
    if (previous->sa_flags & SA_SIGINFO) {
        if (previous->sa_sigaction != NULL && previous->sa_sigaction != gmr_signal_handler) {
            previous->sa_sigaction(signum, info, context);
        }
    }
    else if (previous->sa_handler != SIG_DFL && previous->sa_handler != SIG_IGN
             && previous->sa_handler != NULL) {
        previous->sa_handler(signum);
    }
}

/* This function is signal-safe and only calls signal-safe functions:
 * getpid(), sem_post(), atomic adds, and whatever handler was installed
 * before it. It keeps errno for the code it interrupted. */
static void
gmr_signal_handler(int signum, siginfo_t *info, void *context)
{
    int saved_errno = errno;

    __atomic_add_fetch(&gmr_signals, 1, __ATOMIC_RELAXED);
    if (getpid() == gmr_armed_pid) {
        gmr_channel_post(gmr_armed_channel, 0);
    }
    gmr_chain(signum, info, context);
    errno = saved_errno;
}

static int
gmr_is_ours(const struct sigaction *action)
{
    return (action->sa_flags & SA_SIGINFO) && action->sa_sigaction == gmr_signal_handler;
}

/* Install the handler for signum, from any thread. Returns 0 or an errno. */
static int
gmr_arm(int signum, gmr_channel *channel)
{
    struct sigaction action, previous;

    if (signum <= 0 || signum >= NSIG) {
        return EINVAL;
    }
    gmr_armed_pid = getpid();
    gmr_armed_channel = channel;
    if (sigaction(signum, NULL, &previous) != 0) {
        return errno;
    }
    if (gmr_is_ours(&previous)) {
        return 0; /* armed already: keep the original previous action */
    }
    /* Stored before installing, so the first signal can already chain. */
    gmr_previous[signum] = previous;
    gmr_has_previous[signum] = 1;

    memset(&action, 0, sizeof(action));
    action.sa_sigaction = gmr_signal_handler;
    sigemptyset(&action.sa_mask);
    /* SA_SIGINFO: the three-argument form, so a chained SA_SIGINFO handler
     *             receives the same info and context it would have had.
     * SA_RESTART: a system call interrupted in one of the service's threads
     *             resumes instead of failing with EINTR.
     * SA_ONSTACK: run on the alternate signal stack when the interrupted
     *             thread has one (faulthandler installs one), so a thread
     *             close to stack overflow survives the signal. */
    action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    if (sigaction(signum, &action, NULL) != 0) {
        int error = errno;
        gmr_has_previous[signum] = 0;
        return error;
    }
    return 0;
}

/* Restore the action gmr replaced, unless someone else has replaced gmr since:
 * their handler stays. Returns 0 or an errno. */
static int
gmr_disarm(int signum)
{
    struct sigaction current;
    if (signum <= 0 || signum >= NSIG) {
        return EINVAL;
    }
    if (sigaction(signum, NULL, &current) != 0) {
        return errno;
    }
    if (gmr_is_ours(&current) && gmr_has_previous[signum]) {
        if (sigaction(signum, &gmr_previous[signum], NULL) != 0) {
            return errno;
        }
    }
    gmr_has_previous[signum] = 0;
    return 0;
}

/* 1 when gmr's handler is the installed action for signum (read back with
 * sigaction: signal.getsignal() cannot see a C handler). */
static int
gmr_is_armed(int signum)
{
    struct sigaction current;
    if (signum <= 0 || signum >= NSIG || sigaction(signum, NULL, &current) != 0) {
        return 0;
    }
    return gmr_is_ours(&current);
}

/* 1 when signum has an action other than the default, whoever installed
 * it (Python, faulthandler, a C library), or cannot be read. */
static int
gmr_signal_taken(int signum)
{
    struct sigaction current;
    if (signum <= 0 || signum >= NSIG || sigaction(signum, NULL, &current) != 0) {
        return 1;
    }
    if (current.sa_flags & SA_SIGINFO) {
        return 1;
    }
    return current.sa_handler != SIG_DFL;
}

static unsigned long
gmr_signal_count(void)
{
    return __atomic_load_n(&gmr_signals, __ATOMIC_RELAXED);
}

static long long
gmr_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#endif /* GMR_TRIGGER_H */
