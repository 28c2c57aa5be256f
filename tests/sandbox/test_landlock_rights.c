/* SPDX-License-Identifier: MIT */
/* Both Landlock rulesets handle every filesystem right of the kernel's
 * ABI. REFER and IOCTL_DEV cannot be seen refused on their own: with no
 * path granted any right, a cross-directory rename already needs the
 * refused MAKE_* and REMOVE_* rights, and no device can be opened to
 * ioctl. Their handling is therefore checked here, against the rights
 * each ABI added (Documentation/userspace-api/landlock.rst). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <linux/landlock.h>

#include "sandbox/sandbox.h"

#define ABI1      ((1ULL << 13) - 1) /* EXECUTE .. MAKE_SYM */
#define REFER     (1ULL << 13)
#define TRUNCATE  (1ULL << 14)
#define IOCTL_DEV (1ULL << 15)

static const struct {
	int abi;
	uint64_t rights;
} abis[] = {
        {1, ABI1},
        {2, ABI1 | REFER},
        {3, ABI1 | REFER | TRUNCATE},
        {4, ABI1 | REFER | TRUNCATE},
        {5, ABI1 | REFER | TRUNCATE | IOCTL_DEV},
        {6, ABI1 | REFER | TRUNCATE | IOCTL_DEV},
        {7, ABI1 | REFER | TRUNCATE | IOCTL_DEV},
};

static void every_right_of_each_abi_is_handled(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(abis) / sizeof(abis[0]); i++) {
		uint64_t got = kg_sandbox_fs_rights(abis[i].abi);

		if (got != abis[i].rights)
			fail_msg("ABI %d: rights 0x%llx, want 0x%llx",
			         abis[i].abi, (unsigned long long)got,
			         (unsigned long long)abis[i].rights);
	}
}

/* The kernel headers' names agree with the bits above. */
static void bits_match_the_kernel_headers(void **state)
{
	(void)state;
	assert_int_equal(ABI1, (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1);
	assert_int_equal(REFER, LANDLOCK_ACCESS_FS_REFER);
	assert_int_equal(LANDLOCK_ACCESS_FS_EXECUTE, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(every_right_of_each_abi_is_handled),
	        cmocka_unit_test(bits_match_the_kernel_headers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
