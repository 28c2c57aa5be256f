#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "netparse.h"

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
