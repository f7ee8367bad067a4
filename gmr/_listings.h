/* gmr/_listings.h: the listings of greenlets, assembled without the GIL.
 *
 * At G10000 a text report is thousands of listings that repeat a few
 * hundred distinct stack texts. gmr/_files.pyx reads each greenlet record
 * into a row while it holds the GIL: its numbers as numbers, its escaped
 * name as UTF-8 bytes, and indices into a table of encoded texts (the
 * banner, the types and states, the stacks, where greenlets were spawned).
 * This writes the rows' text into a buffer with no Python call, in the
 * layout that gmr/_files_py.py's twin makes with Python strings:
 *
 *   <banner>\n\n(id 0x<id>, <type>, [<name> [(#<minimal ident>)], ]<state>
 *   [, parent 0x<parent>][, in thread #<thread>][, its frames are its thread's])
 *   \n\n<stack>[\n<where spawned>]\n
 *
 * (the facts on one line). A row may instead be a text of the table whole,
 * then a newline: a record that is not plain data, made by the twin's code,
 * or the line that says why a slice of records failed.
 */
#ifndef GMR_LISTINGS_H
#define GMR_LISTINGS_H

#include <stddef.h>
#include <string.h>

/* Row flags. */
#define GMR_LISTING_MINIMAL 1 /* minimal_ident is shown after the name */
#define GMR_LISTING_RUNNING 2 /* its frames are its thread's */

/* Text index of a row that is a text whole (no listing). */
#define GMR_LISTING_WHOLE ((size_t)-1)
/* Text index of a listing with no spawning stack. */
#define GMR_LISTING_NONE ((size_t)-1)

typedef struct {
    unsigned long long id, minimal_ident;
    unsigned long long parent, thread; /* 0: none */
    size_t name_at, name_size;         /* in the names; name_size 0: no name */
    size_t kind;                       /* the type's text; GMR_LISTING_WHOLE: a text whole */
    size_t state;                      /* the state's text */
    size_t stack;                      /* the stack's text, or the whole text */
    size_t spawned;                    /* where it was spawned, or GMR_LISTING_NONE */
    int flags;
} gmr_listing;

/* The table of texts every row points into (text 0: the banner with the
 * start of the facts, "<banner>\n\n(id 0x"), and the names' bytes. */
typedef struct {
    const char *const *data;
    const size_t *sizes;
    const char *names;
} gmr_listing_texts;

/* How many digits value has in base 16 or 10. */
static size_t
gmr_digits(unsigned long long value, unsigned base)
{
    size_t count = 1;
    while (value >= base) {
        value /= base;
        count++;
    }
    return count;
}

#define GMR_WORDS_SIZE(words) (sizeof(words) - 1)

/* The bytes of a row's text, exactly. */
static size_t
gmr_listing_size(const gmr_listing *row, const gmr_listing_texts *texts)
{
    const size_t *sizes = texts->sizes;
    size_t size;

    if (row->kind == GMR_LISTING_WHOLE) {
        return sizes[row->stack] + 1;
    }
    size = sizes[0] + gmr_digits(row->id, 16) + 2 + sizes[row->kind] + 2 + sizes[row->state]
           + 3 + sizes[row->stack] + 1;
    if (row->name_size) {
        size += row->name_size + 2;
        if (row->flags & GMR_LISTING_MINIMAL) {
            size += 3 + gmr_digits(row->minimal_ident, 10) + 1;
        }
    }
    if (row->parent) {
        size += GMR_WORDS_SIZE(", parent 0x") + gmr_digits(row->parent, 16);
    }
    if (row->thread) {
        size += GMR_WORDS_SIZE(", in thread #") + gmr_digits(row->thread, 10);
    }
    if (row->flags & GMR_LISTING_RUNNING) {
        size += GMR_WORDS_SIZE(", its frames are its thread's");
    }
    if (row->spawned != GMR_LISTING_NONE) {
        size += 1 + sizes[row->spawned];
    }
    return size;
}

static char *
gmr_put(char *out, const char *data, size_t size)
{
    memcpy(out, data, size);
    return out + size;
}

#define GMR_PUT_WORDS(out, words) gmr_put((out), (words), sizeof(words) - 1)

/* value in base 16 (lower case) or 10, as Python's hex() and str() give it. */
static char *
gmr_put_number(char *out, unsigned long long value, unsigned base)
{
    char digits[24];
    int count = 0;
    do {
        digits[count++] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value);
    while (count) {
        *out++ = digits[--count];
    }
    return out;
}

static char *
gmr_put_text(char *out, const gmr_listing_texts *texts, size_t index)
{
    return gmr_put(out, texts->data[index], texts->sizes[index]);
}

/* One row's text at out; returns its end. The room is the caller's. */
static char *
gmr_listing_write(char *out, const gmr_listing *row, const gmr_listing_texts *texts)
{
    if (row->kind == GMR_LISTING_WHOLE) {
        out = gmr_put_text(out, texts, row->stack);
        *out++ = '\n';
        return out;
    }
    out = gmr_put_text(out, texts, 0);
    out = gmr_put_number(out, row->id, 16);
    out = GMR_PUT_WORDS(out, ", ");
    out = gmr_put_text(out, texts, row->kind);
    out = GMR_PUT_WORDS(out, ", ");
    if (row->name_size) {
        out = gmr_put(out, texts->names + row->name_at, row->name_size);
        if (row->flags & GMR_LISTING_MINIMAL) {
            out = GMR_PUT_WORDS(out, " (#");
            out = gmr_put_number(out, row->minimal_ident, 10);
            *out++ = ')';
        }
        out = GMR_PUT_WORDS(out, ", ");
    }
    out = gmr_put_text(out, texts, row->state);
    if (row->parent) {
        out = GMR_PUT_WORDS(out, ", parent 0x");
        out = gmr_put_number(out, row->parent, 16);
    }
    if (row->thread) {
        out = GMR_PUT_WORDS(out, ", in thread #");
        out = gmr_put_number(out, row->thread, 10);
    }
    if (row->flags & GMR_LISTING_RUNNING) {
        out = GMR_PUT_WORDS(out, ", its frames are its thread's");
    }
    out = GMR_PUT_WORDS(out, ")\n\n");
    out = gmr_put_text(out, texts, row->stack);
    if (row->spawned != GMR_LISTING_NONE) {
        *out++ = '\n';
        out = gmr_put_text(out, texts, row->spawned);
    }
    *out++ = '\n';
    return out;
}

/* The text of rows[*next], rows[*next + 1], ..., as many as fit in capacity
 * bytes, and always one (capacity is at least the longest row's size);
 * *next moved past them. Returns the bytes written. */
static size_t
gmr_listings_fill(const gmr_listing *rows, size_t count, size_t *next,
                  const gmr_listing_texts *texts, char *out, size_t capacity)
{
    char *at = out, *end = out + capacity;
    size_t index = *next;
    for (; index < count; index++) {
        if (at > out && gmr_listing_size(&rows[index], texts) > (size_t)(end - at)) {
            break;
        }
        at = gmr_listing_write(at, &rows[index], texts);
    }
    *next = index;
    return (size_t)(at - out);
}

#endif /* GMR_LISTINGS_H */
