/* SPDX-License-Identifier: MIT */
#include "daemon/fds.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define FIRST_KEPT 3

/* Copies first go above every target number, so that moving one fd into
 * place never closes another that is still to be moved; close_range then
 * drops the copies together with everything inherited. */
int kg_fds_keep_only(int *fds, size_t n)
{
	int tmp[KG_FDS_KEEP_MAX];
	int high = FIRST_KEPT + (int)n;

	if (n > KG_FDS_KEEP_MAX) {
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, high);
		if (tmp[i] < 0)
			return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (dup3(tmp[i], FIRST_KEPT + (int)i, O_CLOEXEC) < 0)
			return -1;
		fds[i] = FIRST_KEPT + (int)i;
	}
	return close_range((unsigned int)high, ~0U, 0);
}
