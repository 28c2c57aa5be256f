/* SPDX-License-Identifier: MIT */
/* Target verification and signalling.
 *
 * Anvil names pids; it is not trusted to name the right ones (a stale
 * entry's pid may have been reused by any process). Before a pid is sent
 * SIGTERM, the kernel must confirm that it is a Dovecot mail process of
 * the instance: its comm is one of the configured service names and its
 * parent is the instance's master. The check and the signal go through one
 * pidfd, so the process signalled is the process checked. */
#ifndef KG_VERIFY_H
#define KG_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Longest comm /proc shows (kernel worker names exceed TASK_COMM_LEN). */
#define KG_COMM_MAX 64

/* The fields of /proc/PID/stat the checks need. */
struct kg_proc_stat {
	pid_t pid;
	char comm[KG_COMM_MAX + 1]; /* NUL-terminated */
	char state;                 /* 'R', 'S', 'Z', ... */
	pid_t ppid;                 /* 0 for processes without a parent */
};

/* Parses a whole /proc/PID/stat line, '\n' included. comm runs from the
 * first '(' to the LAST ')': it may itself hold ')', '(' and spaces, while
 * no later field can hold ')'. Returns 0, or -1 when malformed. */
int kg_proc_stat_parse(const char *buf, size_t len, struct kg_proc_stat *out);

struct kg_verify_cfg {
	pid_t master;                /* the instance's Dovecot master */
	const char *const *services; /* comm of a mail process, exact */
	size_t n_services;
	bool dry_run; /* check only, signal nothing */
};

/* Checks pid and, unless dry_run, sends it SIGTERM. Returns 0 when it was
 * signalled (dry run: when it passed the checks), otherwise an enum
 * kg_refuse_reason: KG_REFUSE_NOT_DOVECOT (wrong comm or parent, or its
 * stat unreadable while it lives), KG_REFUSE_GONE (no such process, exited
 * before or during the checks), KG_REFUSE_SIGNAL (it could not be
 * signalled). */
int kg_verify_signal(const struct kg_verify_cfg *cfg, pid_t pid);

/* Finds the instance's master from anvil, the process the kernel named
 * as the writer of the dump: it must be a running process named "anvil"
 * whose parent is a running process named "dovecot", and that parent is
 * the master. This holds whether the master runs in the foreground (-F,
 * systemd) or detached itself (init scripts), and follows a restarted
 * Dovecot. Returns 0 with *master set, or -1 with a one-line reason in
 * err and *master 0. */
int kg_master_find(pid_t anvil, pid_t *master, char *err, size_t errlen);

#endif
