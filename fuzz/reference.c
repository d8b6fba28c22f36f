/*
 * reference.c - the protocol's rules for text and names, written a second
 * time, as plainly as they can be, for the fuzz harness to hold user.c to.
 *
 * Nothing here is shared with user.c, and it is written another way: valid
 * UTF-8 is a table of byte ranges copied from the Unicode Standard instead
 * of a decoder with checks for overlong forms and surrogates. Speed does
 * not matter; being obviously right does.
 */
#include "reference.h"

/*
 * Table 3-7 of the Unicode Standard, "Well-Formed UTF-8 Byte Sequences":
 * each row gives, byte by byte, the lowest and highest value a sequence of
 * that shape may hold. Every valid sequence matches exactly one row;
 * overlong forms, surrogates and code points past U+10FFFF match none.
 */
struct utf8_row {
    size_t len;
    unsigned char low[4], high[4];
};

static const struct utf8_row utf8_rows[] = {
    {1, {0x00}, {0x7f}},
    {2, {0xc2, 0x80}, {0xdf, 0xbf}},
    {3, {0xe0, 0xa0, 0x80}, {0xe0, 0xbf, 0xbf}},
    {3, {0xe1, 0x80, 0x80}, {0xec, 0xbf, 0xbf}},
    {3, {0xed, 0x80, 0x80}, {0xed, 0x9f, 0xbf}},
    {3, {0xee, 0x80, 0x80}, {0xef, 0xbf, 0xbf}},
    {4, {0xf0, 0x90, 0x80, 0x80}, {0xf0, 0xbf, 0xbf, 0xbf}},
    {4, {0xf1, 0x80, 0x80, 0x80}, {0xf3, 0xbf, 0xbf, 0xbf}},
    {4, {0xf4, 0x80, 0x80, 0x80}, {0xf4, 0x8f, 0xbf, 0xbf}},
};

/* Whether the n bytes at s begin with a sequence of the row's shape. */
static bool row_matches(const struct utf8_row *row, const unsigned char *s,
                        size_t n)
{
    if (row->len > n)
        return false;
    for (size_t i = 0; i < row->len; i++)
        if (s[i] < row->low[i] || s[i] > row->high[i])
            return false;
    return true;
}

/* The length of the valid UTF-8 sequence that begins the n bytes at s (n
 * at least 1), or 0 if they begin with none. */
size_t ref_sequence_length(const unsigned char *s, size_t n)
{
    for (size_t r = 0; r < sizeof utf8_rows / sizeof utf8_rows[0]; r++)
        if (row_matches(&utf8_rows[r], s, n))
            return utf8_rows[r].len;
    return 0;
}

/* The code point of a valid sequence of len bytes: the lead byte's low
 * bits, then six bits from each continuation byte. */
unsigned long ref_code_point(const unsigned char *s, size_t len)
{
    static const unsigned char lead_bits[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
    unsigned long c = s[0] & lead_bits[len];

    for (size_t i = 1; i < len; i++)
        c = c * 64 + (s[i] & 0x3f);
    return c;
}

/* The protocol's control characters: C0 but TAB, DEL, and C1. */
bool ref_is_control(unsigned long c)
{
    return (c <= 0x1f && c != 0x09) || c == 0x7f || (c >= 0x80 && c <= 0x9f);
}

/*
 * Cleans len bytes from in into out, which has room for len: a valid
 * sequence that is not a control character is copied; anything else, a
 * control character or a byte that begins no valid sequence, is dropped,
 * or with show set becomes one '?'. Returns the length of out.
 */
size_t ref_clean(const unsigned char *in, size_t len, bool show,
                 unsigned char *out)
{
    size_t kept = 0, i = 0;

    while (i < len) {
        size_t n = ref_sequence_length(in + i, len - i);
        bool text = n > 0 && !ref_is_control(ref_code_point(in + i, n));

        if (n == 0)
            n = 1;
        if (text) {
            for (size_t k = 0; k < n; k++)
                out[kept++] = in[i + k];
        } else if (show) {
            out[kept++] = '?';
        }
        i += n;
    }
    return kept;
}

/* Whether len bytes are clean text already: nothing to drop. */
bool ref_is_clean(const unsigned char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t n = ref_sequence_length(s + i, len - i);

        if (n == 0 || ref_is_control(ref_code_point(s + i, n)))
            return false;
        i += n;
    }
    return true;
}

/* The invisible and direction-changing characters a name may not hold,
 * as the protocol lists them. */
static bool is_spoofing(unsigned long c)
{
    return (c >= 0x200b && c <= 0x200f) || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2060 && c <= 0x2064) || (c >= 0x2066 && c <= 0x2069) ||
           c == 0xfeff;
}

/*
 * A valid name: 1 to REF_MAX_NAME bytes of clean text with no space (a
 * blank or a TAB), no '|' and no invisible character. Whether it has the
 * shape of an address is another question.
 */
bool ref_name_is_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;

    if (len == 0 || len > REF_MAX_NAME || !ref_is_clean(s, len))
        return false;
    while (i < len) {
        size_t n = ref_sequence_length(s + i, len - i);
        unsigned long c = ref_code_point(s + i, n);

        if (c == ' ' || c == '\t' || c == '|' || is_spoofing(c))
            return false;
        i += n;
    }
    return true;
}
