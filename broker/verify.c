/* SPDX-License-Identifier: MIT */
#include "broker/verify.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <unistd.h>

#include "proto/kg_limits.h"
#include "proto/wire.h"

/* A whole stat line is about 1 KiB at most: 52 numeric fields and comm. */
#define STAT_BUF 4096

static const char master_comm[] = "dovecot";
static const char anvil_comm[] = "anvil";

/* Canonical decimal 0..INT32_MAX (pid_t's range on Linux): digits only,
 * no leading zero. */
static int parse_dec(const char *s, size_t len, pid_t *out)
{
	int64_t v = 0;

	if (len == 0 || len > 10 || (s[0] == '0' && len > 1))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v > INT32_MAX)
		return -1;
	*out = (pid_t)v;
	return 0;
}

/* After comm: " S PPID ", where S is one state letter. */
static int parse_tail(const char *p, const char *end, struct kg_proc_stat *out)
{
	const char *sp;

	if (end - p < 5 || p[0] != ' ' || p[1] == ' ' || p[2] != ' ')
		return -1;
	out->state = p[1];
	p += 3;
	sp = memchr(p, ' ', (size_t)(end - p));
	if (sp == NULL)
		return -1;
	return parse_dec(p, (size_t)(sp - p), &out->ppid);
}

int kg_proc_stat_parse(const char *buf, size_t len, struct kg_proc_stat *out)
{
	const char *lparen, *rparen;
	size_t comm_len;

	if (len == 0 || buf[len - 1] != '\n')
		return -1;
	lparen = memchr(buf, '(', len);
	rparen = memrchr(buf, ')', len);
	if (lparen == NULL || rparen == NULL || rparen < lparen ||
	    lparen == buf || lparen[-1] != ' ')
		return -1;
	if (parse_dec(buf, (size_t)(lparen - 1 - buf), &out->pid) < 0 ||
	    out->pid == 0)
		return -1;
	comm_len = (size_t)(rparen - lparen - 1);
	if (comm_len > KG_COMM_MAX || memchr(lparen + 1, '\0', comm_len))
		return -1;
	memcpy(out->comm, lparen + 1, comm_len);
	out->comm[comm_len] = '\0';
	return parse_tail(rparen + 1, buf + len, out);
}

/* Reads /proc/PID/stat in one read, which procfs serves whole. */
static int read_stat(pid_t pid, struct kg_proc_stat *out)
{
	char path[32], buf[STAT_BUF];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0 || kg_proc_stat_parse(buf, (size_t)n, out) < 0)
		return -1;
	return out->pid == pid ? 0 : -1;
}

static bool is_service(const struct kg_verify_cfg *cfg, const char *comm)
{
	for (size_t i = 0; i < cfg->n_services; i++)
		if (strcmp(cfg->services[i], comm) == 0)
			return true;
	return false;
}

/* st is what /proc said about pid after pidfd was opened, or NULL if it
 * could not be read.
 *
 * A pid is freed for reuse only once its process is reaped. The pidfd was
 * opened before /proc was read and pins the process that held the pid
 * then. If that process is still unreaped now (a signal 0 through the
 * pidfd succeeds), it held the pid all along, so the stat read in between
 * was its own. No start-time comparison is needed on top of this. */
static int judge(const struct kg_verify_cfg *cfg, int pidfd,
                 const struct kg_proc_stat *st)
{
	if (pidfd_send_signal(pidfd, 0, NULL, 0) < 0)
		return errno == ESRCH ? KG_REFUSE_GONE : KG_REFUSE_SIGNAL;
	if (st == NULL)
		return KG_REFUSE_NOT_DOVECOT;
	/* Exited but unreaped: nothing is left to disconnect. */
	if (st->state == 'Z' || st->state == 'X')
		return KG_REFUSE_GONE;
	if (st->ppid != cfg->master || !is_service(cfg, st->comm))
		return KG_REFUSE_NOT_DOVECOT;
	return 0;
}

static int open_pidfd(pid_t pid, int *pidfd)
{
	*pidfd = pidfd_open(pid, 0);
	if (*pidfd >= 0)
		return 0;
	if (errno == ESRCH)
		return KG_REFUSE_GONE;
	/* A thread id, not a process: EINVAL, or ENOENT on newer kernels. */
	if (errno == EINVAL || errno == ENOENT)
		return KG_REFUSE_NOT_DOVECOT;
	return KG_REFUSE_SIGNAL;
}

int kg_verify_signal(const struct kg_verify_cfg *cfg, pid_t pid)
{
	struct kg_proc_stat st;
	int pidfd, res;

	if (pid <= 0 || cfg->master <= 0)
		return KG_REFUSE_NOT_DOVECOT;
	res = open_pidfd(pid, &pidfd);
	if (res != 0)
		return res;
	res = judge(cfg, pidfd, read_stat(pid, &st) == 0 ? &st : NULL);
	if (res == 0 && !cfg->dry_run &&
	    pidfd_send_signal(pidfd, SIGTERM, NULL, 0) < 0)
		res = errno == ESRCH ? KG_REFUSE_GONE : KG_REFUSE_SIGNAL;
	close(pidfd);
	return res;
}

/* A running (not exited) process with this comm, read from /proc. */
static bool running_as(pid_t pid, const char *comm, struct kg_proc_stat *st)
{
	return read_stat(pid, st) == 0 && st->state != 'Z' &&
	       st->state != 'X' && strcmp(st->comm, comm) == 0;
}

int kg_master_find(pid_t anvil, pid_t *master, char *err, size_t errlen)
{
	struct kg_proc_stat st;
	pid_t parent;

	*master = 0;
	if (anvil <= 0) {
		snprintf(err, errlen, "anvil's answer carried no sender");
		return -1;
	}
	if (!running_as(anvil, anvil_comm, &st)) {
		snprintf(err, errlen,
		         "the process that answered on the anvil socket "
		         "(pid %d) is not a running Dovecot anvil",
		         (int)anvil);
		return -1;
	}
	parent = st.ppid;
	if (!running_as(parent, master_comm, &st)) {
		snprintf(err, errlen,
		         "the parent of anvil (pid %d) is not a running "
		         "Dovecot master",
		         (int)parent);
		return -1;
	}
	*master = parent;
	return 0;
}
