/* Glob matching with '*' and '?', ASCII case-insensitive. */
#include "glob.h"

#include <stdint.h>

static unsigned char fold(char c)
{
	unsigned char u = (unsigned char)c;

	return u >= 'A' && u <= 'Z' ? (unsigned char)(u - 'A' + 'a') : u;
}

/* Greedy star with one backtrack point: on a mismatch only the latest '*'
 * is retried, one name byte further on. An earlier star never needs a
 * retry because the later one can absorb anything it would, so each star
 * position is tried at most name_len times and the work is
 * O(glob_len * name_len). */
bool kg_glob_match(const char *glob, size_t glob_len, const char *name,
                   size_t name_len)
{
	size_t g = 0, n = 0;
	size_t star_g = SIZE_MAX, star_n = 0;

	while (n < name_len) {
		if (g < glob_len && glob[g] == '*') {
			star_g = ++g;
			star_n = n;
		} else if (g < glob_len &&
		           (glob[g] == '?' || fold(glob[g]) == fold(name[n]))) {
			g++;
			n++;
		} else if (star_g != SIZE_MAX) {
			g = star_g;
			n = ++star_n;
		} else {
			return false;
		}
	}
	while (g < glob_len && glob[g] == '*')
		g++;
	return g == glob_len;
}
