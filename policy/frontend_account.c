/* SPDX-License-Identifier: MIT */
#include "policy/frontend_account.h"

#include <ctype.h>
#include <dirent.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define NOBODY   "nobody"
#define OWN_NAME "kickgated"
/* The kernel's comm: 15 bytes and a NUL. */
#define COMM_MAX 16

/* The account kickgated.conf(5) documents as the default. */
#define DEDICATED "_kickgate"

struct proc_ids {
	char name[COMM_MAX];
	pid_t ppid;
	uid_t ruid, euid;
};

/* Name, PPid and the real and effective uid from /proc/PID/status. */
static bool read_status(long pid, struct proc_ids *out)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	int found = 0;
	unsigned int ruid, euid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	f = fopen(path, "re");
	if (f == NULL)
		return false;
	while (found < 3 && getline(&line, &cap, f) > 0) {
		if (sscanf(line, "Name:\t%15[^\n]", out->name) == 1 ||
		    sscanf(line, "PPid:\t%d", &out->ppid) == 1)
			found++;
		else if (sscanf(line, "Uid:\t%u\t%u", &ruid, &euid) == 2) {
			out->ruid = ruid;
			out->euid = euid;
			found++;
		}
	}
	free(line);
	fclose(f);
	return found == 3;
}

/* A running kickgated's frontend: a fork of its root supervisor, which
 * a reload or a kickgated -t next to the daemon must not count. */
static bool is_own(const struct proc_ids *p)
{
	struct proc_ids parent;

	return strcmp(p->name, OWN_NAME) == 0 &&
	       read_status(p->ppid, &parent) && parent.ruid == 0 &&
	       strcmp(parent.name, OWN_NAME) == 0;
}

static long pid_of(const char *entry)
{
	char *end;
	long pid;

	if (!isdigit((unsigned char)entry[0]))
		return 0;
	pid = strtol(entry, &end, 10);
	return *end == '\0' ? pid : 0;
}

/* A process other than kickgated's own whose real or effective uid is
 * uid: its pid and name in *found. False when there is none. */
static bool find_other_process(uid_t uid, long *pid, struct proc_ids *found)
{
	DIR *d = opendir("/proc");
	const struct dirent *e;
	bool hit = false;

	if (d == NULL)
		return false;
	while (!hit && (e = readdir(d)) != NULL) {
		*pid = pid_of(e->d_name);
		hit = *pid > 0 && read_status(*pid, found) &&
		      (found->ruid == uid || found->euid == uid) &&
		      !is_own(found);
	}
	closedir(d);
	return hit;
}

/* uid of the account named nobody, or -1 when there is none. */
static uid_t nobody_uid(void)
{
	const struct passwd *pw = getpwnam(NOBODY);

	return pw != NULL ? pw->pw_uid : (uid_t)-1;
}

/* One error line: what is wrong with the account, then how to create
 * one that is right, named account. */
__attribute__((format(printf, 5, 6))) static int
refuse(FILE *errs, const char *path, const struct kg_config *cfg,
       const char *account, const char *fmt, ...)
{
	va_list ap;

	if (errs == NULL)
		return 1;
	fprintf(errs, "%s:%zu: frontend_user: ", path, cfg->frontend_line);
	va_start(ap, fmt);
	vfprintf(errs, fmt, ap);
	va_end(ap);
	fprintf(errs,
	        "; create a dedicated account: adduser --system --group "
	        "--no-create-home %s (or useradd --system --user-group "
	        "--no-create-home --shell /usr/sbin/nologin %s)\n",
	        account, account);
	return 1;
}

/* Everything that can be judged from the passwd entry alone. */
static int check_entry(struct kg_config *cfg, const char *path, FILE *errs,
                       uid_t nobody)
{
	const char *name = cfg->frontend_user;
	const struct passwd *pw = getpwnam(name);

	if (pw == NULL)
		return refuse(errs, path, cfg, name, "no account '%s'", name);
	if (strcmp(name, NOBODY) == 0 || pw->pw_uid == nobody)
		return refuse(errs, path, cfg, DEDICATED,
		              "'%s' is the nobody account, shared by other "
		              "daemons and by unmapped ids",
		              name);
	if (pw->pw_uid == 0 || pw->pw_gid == 0)
		return refuse(errs, path, cfg, DEDICATED,
		              "'%s' has uid or gid 0", name);
	cfg->frontend_uid = pw->pw_uid;
	cfg->frontend_gid = pw->pw_gid;
	return 0;
}

int kg_frontend_account_check(struct kg_config *cfg, const char *path,
                              FILE *errs)
{
	struct proc_ids other;
	long pid;

	if (check_entry(cfg, path, errs, nobody_uid()) > 0)
		return 1;
	/* A compromised frontend could signal or trace a broker of its own
	 * uid. */
	if (cfg->broker.uid == cfg->frontend_uid)
		return refuse(errs, path, cfg, DEDICATED,
		              "'%s' is also broker_user; they must differ",
		              cfg->frontend_user);
	if (find_other_process(cfg->frontend_uid, &pid, &other))
		return refuse(errs, path, cfg, DEDICATED,
		              "'%s' (uid %u) runs other processes, such as "
		              "pid %ld (%s)",
		              cfg->frontend_user,
		              (unsigned int)cfg->frontend_uid, pid, other.name);
	return 0;
}

int kg_config_load_for_daemon(const char *path, struct kg_config *cfg,
                              FILE *errs)
{
	int errors = kg_config_load(path, cfg, errs);

	return errors > 0 ? errors : kg_frontend_account_check(cfg, path, errs);
}
