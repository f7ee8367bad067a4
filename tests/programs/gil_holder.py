"""hold_the_gil(seconds): the calling thread holds the GIL in one C call.

pthread_mutex_timedlock on a mutex this thread already holds, called through
ctypes.PyDLL (which keeps the GIL across the call): it waits out its timeout
and never returns EINTR, so a signal cannot end it."""

import ctypes
import time


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def hold_the_gil(seconds: int) -> None:
    libc = ctypes.CDLL(None)
    mutex = ctypes.create_string_buffer(64)  # zeroed: PTHREAD_MUTEX_INITIALIZER
    libc.pthread_mutex_lock(mutex)
    deadline = Timespec(int(time.time()) + seconds, 0)
    ctypes.PyDLL(None).pthread_mutex_timedlock(mutex, ctypes.byref(deadline))
