/* gmr/_listings.h: the listings of greenlets, assembled without the GIL.
 *
 * At G10000 a report is thousands of listings that repeat a few hundred
 * distinct stacks. gmr/_files.pyx reads each greenlet record into a row
 * while it holds the GIL: its numbers as numbers, its escaped name as UTF-8
 * bytes, and indices into a table of encoded texts (the types and states,
 * the stacks, where greenlets were spawned). This writes the rows' text
 * into a buffer with no Python call, in the layout that gmr/render.py makes
 * with Python strings, for the text report:
 *
 *   <banner>\n\n(id 0x<id>, <type>, [<name> [(#<minimal ident>)], ]<state>
 *   [, parent 0x<parent>][, in thread #<thread>][, its frames are its thread's])
 *   \n\n<stack>[\n<where spawned>]\n
 *
 * (the facts on one line), and for JSON, one record a line (json) or all on
 * one (json-compact), between the separators of their list:
 *
 *   {"id": <id>, "type": <type>, "name": <name or null>, "minimal_ident": ...,
 *    "state": ..., "parent": ..., "thread": ..., "spawned_by": ...,
 *    "spawning_stack": <where spawned>, <the stack's fields>}
 *
 * A row may instead be a text of the table whole: a record that is not
 * plain data, made by render's own code, or the line that says why a slice
 * of records failed.
 */
#ifndef GMR_LISTINGS_H
#define GMR_LISTINGS_H

#include <stddef.h>
#include <string.h>

/* Row flags: which numbers are not None, and a running greenlet. */
#define GMR_LISTING_MINIMAL 1
#define GMR_LISTING_RUNNING 2 /* its frames are its thread's */
#define GMR_LISTING_PARENT 4
#define GMR_LISTING_THREAD 8
#define GMR_LISTING_SPAWNER 16

/* Layouts. */
#define GMR_LISTING_TEXT 0
#define GMR_LISTING_JSON 1
#define GMR_LISTING_JSON_COMPACT 2

/* Texts every table starts with: what opens a text listing (the banner and
 * the start of its facts), what comes before the first row, between two
 * rows, and after each row. */
#define GMR_LISTING_OPENING 0
#define GMR_LISTING_FIRST 1
#define GMR_LISTING_BETWEEN 2
#define GMR_LISTING_AFTER 3

/* Text index of a row that is a text whole (no listing). */
#define GMR_LISTING_WHOLE ((size_t)-1)
/* Text index of a listing with no spawning stack. */
#define GMR_LISTING_NONE ((size_t)-1)

typedef struct {
    unsigned long long id, minimal_ident, parent, thread, spawned_by;
    size_t name_at, name_size;         /* in the names; name_size 0: no name (null) */
    size_t kind;                       /* the type's text; GMR_LISTING_WHOLE: a text whole */
    size_t state;                      /* the state's text */
    size_t stack;                      /* the stack's text, or the whole text */
    size_t spawned;                    /* where it was spawned, or GMR_LISTING_NONE */
    int flags;
} gmr_listing;

/* The table of texts every row points into (GMR_LISTING_OPENING to _AFTER
 * first), the names' bytes, and the layout. */
typedef struct {
    const char *const *data;
    const size_t *sizes;
    const char *names;
    int layout;
} gmr_listing_texts;

/* A JSON record's keys, with the separators before them, by layout. */
static const char *const gmr_json_keys[2][10] = {
    {"{\"id\": ", ", \"type\": ", ", \"name\": ", ", \"minimal_ident\": ", ", \"state\": ",
     ", \"parent\": ", ", \"thread\": ", ", \"spawned_by\": ", ", \"spawning_stack\": ", ", "},
    {"{\"id\":", ",\"type\":", ",\"name\":", ",\"minimal_ident\":", ",\"state\":",
     ",\"parent\":", ",\"thread\":", ",\"spawned_by\":", ",\"spawning_stack\":", ","},
};

/* Where a row's text goes: at a buffer (at), or nowhere (at NULL: its
 * size is only counted). One writer serves both, so a row's size and its
 * text never disagree: buffers are filled by those sizes. */
typedef struct {
    char *at;
    size_t size;
} gmr_out;

static void
gmr_put(gmr_out *out, const char *data, size_t size)
{
    if (out->at != NULL) {
        memcpy(out->at, data, size);
        out->at += size;
    }
    out->size += size;
}

#define GMR_PUT_WORDS(out, words) gmr_put((out), (words), sizeof(words) - 1)

/* value in base 16 (lower case) or 10, as Python's hex() and str() give it. */
static void
gmr_put_number(gmr_out *out, unsigned long long value, unsigned base)
{
    char digits[24];
    int start = sizeof(digits);
    do {
        digits[--start] = "0123456789abcdef"[value % base];
        value /= base;
    } while (value);
    gmr_put(out, digits + start, sizeof(digits) - start);
}

static void
gmr_put_text(gmr_out *out, const gmr_listing_texts *texts, size_t index)
{
    gmr_put(out, texts->data[index], texts->sizes[index]);
}

/* A JSON number, or null where the row has none (flag not set). */
static void
gmr_put_json_number(gmr_out *out, const gmr_listing *row, int flag, unsigned long long value)
{
    if (row->flags & flag) {
        gmr_put_number(out, value, 10);
    }
    else {
        GMR_PUT_WORDS(out, "null");
    }
}

static void
gmr_listing_text(gmr_out *out, const gmr_listing *row, const gmr_listing_texts *texts)
{
    gmr_put_text(out, texts, GMR_LISTING_OPENING);
    gmr_put_number(out, row->id, 16);
    GMR_PUT_WORDS(out, ", ");
    gmr_put_text(out, texts, row->kind);
    GMR_PUT_WORDS(out, ", ");
    if (row->name_size) {
        gmr_put(out, texts->names + row->name_at, row->name_size);
        if (row->flags & GMR_LISTING_MINIMAL) {
            GMR_PUT_WORDS(out, " (#");
            gmr_put_number(out, row->minimal_ident, 10);
            GMR_PUT_WORDS(out, ")");
        }
        GMR_PUT_WORDS(out, ", ");
    }
    gmr_put_text(out, texts, row->state);
    if (row->parent) {
        GMR_PUT_WORDS(out, ", parent 0x");
        gmr_put_number(out, row->parent, 16);
    }
    if (row->thread) {
        GMR_PUT_WORDS(out, ", in thread #");
        gmr_put_number(out, row->thread, 10);
    }
    if (row->flags & GMR_LISTING_RUNNING) {
        GMR_PUT_WORDS(out, ", its frames are its thread's");
    }
    GMR_PUT_WORDS(out, ")\n\n");
    gmr_put_text(out, texts, row->stack);
    if (row->spawned != GMR_LISTING_NONE) {
        GMR_PUT_WORDS(out, "\n");
        gmr_put_text(out, texts, row->spawned);
    }
}

static void
gmr_listing_json(gmr_out *out, const gmr_listing *row, const gmr_listing_texts *texts)
{
    const char *const *keys = gmr_json_keys[texts->layout == GMR_LISTING_JSON_COMPACT];
    int key = 0;
#define GMR_KEY() gmr_put(out, keys[key], strlen(keys[key])), key++
    GMR_KEY();
    gmr_put_number(out, row->id, 10);
    GMR_KEY();
    gmr_put_text(out, texts, row->kind);
    GMR_KEY();
    if (row->name_size) {
        gmr_put(out, texts->names + row->name_at, row->name_size);
    }
    else {
        GMR_PUT_WORDS(out, "null");
    }
    GMR_KEY();
    gmr_put_json_number(out, row, GMR_LISTING_MINIMAL, row->minimal_ident);
    GMR_KEY();
    gmr_put_text(out, texts, row->state);
    GMR_KEY();
    gmr_put_json_number(out, row, GMR_LISTING_PARENT, row->parent);
    GMR_KEY();
    gmr_put_json_number(out, row, GMR_LISTING_THREAD, row->thread);
    GMR_KEY();
    gmr_put_json_number(out, row, GMR_LISTING_SPAWNER, row->spawned_by);
    GMR_KEY();
    gmr_put_text(out, texts, row->spawned);
    GMR_KEY();
    gmr_put_text(out, texts, row->stack);
#undef GMR_KEY
}

/* Row index's text, its separators included, at out->at (NULL: counted
 * only). The room is the caller's. */
static void
gmr_listing_emit(gmr_out *out, const gmr_listing *rows, size_t index,
                 const gmr_listing_texts *texts)
{
    const gmr_listing *row = &rows[index];
    gmr_put_text(out, texts, index == 0 ? GMR_LISTING_FIRST : GMR_LISTING_BETWEEN);
    if (row->kind == GMR_LISTING_WHOLE) {
        gmr_put_text(out, texts, row->stack);
    }
    else if (texts->layout == GMR_LISTING_TEXT) {
        gmr_listing_text(out, row, texts);
    }
    else {
        gmr_listing_json(out, row, texts);
    }
    gmr_put_text(out, texts, GMR_LISTING_AFTER);
}

/* The bytes of row index's text, its separators included. */
static size_t
gmr_listing_size(const gmr_listing *rows, size_t index, const gmr_listing_texts *texts)
{
    gmr_out out = {NULL, 0};
    gmr_listing_emit(&out, rows, index, texts);
    return out.size;
}

/* The text of rows[*next], rows[*next + 1], ..., as many as fit in capacity
 * bytes, and always one (capacity is at least the longest row's size);
 * *next moved past them. after[i]: the size of the rows from i on. Returns
 * the bytes written. */
static size_t
gmr_listings_fill(const gmr_listing *rows, size_t count, const size_t *after, size_t *next,
                  const gmr_listing_texts *texts, char *buffer, size_t capacity)
{
    gmr_out out = {buffer, 0};
    size_t index = *next;
    for (; index < count; index++) {
        if (out.size > 0 && after[index] - after[index + 1] > capacity - out.size) {
            break;
        }
        gmr_listing_emit(&out, rows, index, texts);
    }
    *next = index;
    return out.size;
}

#endif /* GMR_LISTINGS_H */
