/* SPDX-License-Identifier: MIT */
#include "tests/unit/testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "proto/netparse.h"

static const struct kg_str tenant_a_glob = {"*@tenant-a.example", 18};

const struct kg_scope tu_scope_all = {.all_users = true, .all_nets = true};
const struct kg_scope tu_scope_tenant_a = {
        .globs = &tenant_a_glob,
        .n_globs = 1,
        .all_nets = true,
};

struct kg_addr tu_addr(const char *text)
{
	struct kg_addr a;
	struct kg_net n;

	if (!text) {
		kg_addr_set(&a, KG_AF_NONE, NULL);
		return a;
	}
	assert_true(kg_net_parse(text, strlen(text), &n, NULL));
	kg_addr_set(&a, n.family, n.bytes);
	return a;
}

struct kg_request tu_request(uint8_t op, const char *glob, const char *net,
                             uint8_t flags)
{
	struct kg_request r;

	memset(&r, 0, sizeof(r));
	r.op = op;
	r.flags = flags;
	if (glob) {
		r.glob_len = (uint8_t)strlen(glob);
		memcpy(r.glob, glob, r.glob_len);
	}
	if (net)
		assert_true(kg_net_parse(net, strlen(net), &r.net, NULL));
	return r;
}

struct kg_conn tu_conn(uint32_t pid, const char *service, const char *user,
                       const char *addr, uint32_t refcount)
{
	return (struct kg_conn){
	        .pid = pid,
	        .refcount = refcount,
	        .addr = tu_addr(addr),
	        .service = service,
	        .service_len = strlen(service),
	        .user = user,
	        .user_len = strlen(user),
	};
}

struct tu_capture tu_capture_stderr(void)
{
	struct tu_capture c;
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	c.saved = dup(STDERR_FILENO);
	assert_true(c.saved >= 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	close(p[1]);
	c.rd = p[0];
	return c;
}

void tu_captured(struct tu_capture c, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	assert_true(dup2(c.saved, STDERR_FILENO) >= 0);
	close(c.saved);
	while ((n = read(c.rd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	close(c.rd);
}
