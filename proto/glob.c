/* SPDX-License-Identifier: MIT */
/* Glob matching with '*' and '?', ASCII case-insensitive. */
#include "proto/glob.h"

#include <string.h>

static unsigned char fold(char c)
{
	unsigned char u = (unsigned char)c;

	return u >= 'A' && u <= 'Z' ? (unsigned char)(u - 'A' + 'a') : u;
}

/* True when the len name bytes match the len bytes of a star-free piece
 * of the glob. */
static bool piece_matches(const char *piece, const char *name, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (piece[i] != '?' && fold(piece[i]) != fold(name[i]))
			return false;
	return true;
}

/* Matches the pieces between the first and the last star (glob runs up to
 * and with the last star), in order, each at its leftmost place in
 * name[0..name_len). The leftmost place is always right: a piece has a fixed
 * length, so placing it earlier leaves the later pieces the most room. Each
 * piece is tried at most name_len times, so the work is O(glob_len * name_len).
 */
static bool match_inner(const char *glob, size_t glob_len, const char *name,
                        size_t name_len)
{
	size_t g = 0, n = 0;

	while (g < glob_len) {
		const char *star = memchr(glob + g, '*', glob_len - g);
		size_t len = star ? (size_t)(star - glob) - g : glob_len - g;

		while (n + len <= name_len &&
		       !piece_matches(glob + g, name + n, len))
			n++;
		if (n + len > name_len)
			return false;
		n += len;
		g += len + 1;
	}
	return true;
}

/* The pieces before the first star and after the last one are anchored to
 * the ends of the name; the suffix is tested first because names sharing
 * a domain differ mostly at their start, and it rejects most names in a
 * few bytes. */
bool kg_glob_match(const char *glob, size_t glob_len, const char *name,
                   size_t name_len)
{
	const char *first = memchr(glob, '*', glob_len);
	const char *last;
	size_t head, tail;

	if (first == NULL)
		return glob_len == name_len &&
		       piece_matches(glob, name, name_len);
	last = memrchr(glob, '*', glob_len);
	head = (size_t)(first - glob);
	tail = glob_len - head - 1 - (size_t)(last - first);
	if (head + tail > name_len ||
	    !piece_matches(last + 1, name + name_len - tail, tail) ||
	    !piece_matches(glob, name, head))
		return false;
	return match_inner(first + 1, (size_t)(last - first), name + head,
	                   name_len - head - tail);
}
