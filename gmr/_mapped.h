/* gmr/_mapped.h: the arrays of a report that may be megabytes (the
 * capture's, the greenlet listings' rows and text), mapped for themselves.
 *
 * malloc would hand the first such block back to the system when it is
 * freed and then raise its mmap threshold above that size for good, so the
 * next ones (the service's own included) would stay in the service's heap
 * after the report (5 MB at G10000 D30). A mapped array goes back to the
 * system when it is unmapped, and malloc never sees it.
 *
 * Plain C, no Python call: used with or without the GIL.
 */
#ifndef GMR_MAPPED_H
#define GMR_MAPPED_H

#include <stddef.h>
#include <sys/mman.h>
#include <sys/types.h>

/* Room for `needed` items of `item` bytes in *array (NULL: none yet), its
 * capacity doubled until it holds them. 0, or -1 when out of memory (the
 * array is then as it was). */
static int
gmr_grow(void **array, ssize_t *capacity, ssize_t needed, size_t item)
{
    ssize_t size = *capacity;
    void *grown;

    if (needed <= size) {
        return 0;
    }
    while (size < needed) {
        size = size ? size * 2 : 16;
    }
    grown = *array == NULL
        ? mmap(NULL, (size_t)size * item, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
               -1, 0)
        : mremap(*array, (size_t)*capacity * item, (size_t)size * item, MREMAP_MAYMOVE);
    if (grown == MAP_FAILED) {
        return -1;
    }
    *array = grown;
    *capacity = size;
    return 0;
}

/* Free an array gmr_grow made. */
static void
gmr_unmap(void **array, ssize_t *capacity, size_t item)
{
    if (*array != NULL) {
        munmap(*array, (size_t)*capacity * item);
    }
    *array = NULL;
    *capacity = 0;
}

#endif /* GMR_MAPPED_H */
