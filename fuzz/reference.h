/*
 * reference.h - the protocol's rules for text and names, written a second
 * time for the fuzz harness: what user.c is checked against. reference.c
 * says what each function does.
 */
#ifndef REFERENCE_H
#define REFERENCE_H

#include <stdbool.h>
#include <stddef.h>

#define REF_MAX_NAME 32 /* bytes in a name, as the protocol says */

size_t ref_sequence_length(const unsigned char *s, size_t n);
unsigned long ref_code_point(const unsigned char *s, size_t len);
bool ref_is_control(unsigned long c);
size_t ref_clean(const unsigned char *in, size_t len, bool show,
                 unsigned char *out);
bool ref_is_clean(const unsigned char *s, size_t len);
bool ref_name_is_valid(const unsigned char *s, size_t len);

#endif
