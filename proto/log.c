/* SPDX-License-Identifier: MIT */
#include "proto/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

static bool use_stderr = true;
static const char *log_ident = "kickgated";
static const char *log_role = "main";

void kg_log_open(const char *ident, bool to_stderr)
{
	log_ident = ident;
	use_stderr = to_stderr;
	if (!use_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void kg_log_close(void)
{
	if (!use_stderr)
		closelog();
}

void kg_log_reopen(void)
{
	kg_log_open(log_ident, use_stderr);
}

bool kg_log_to_stderr(void)
{
	return use_stderr;
}

void kg_log_role(const char *role)
{
	log_role = role;
}

static void kg_vlog(int prio, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

static void kg_vlog(int prio, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (use_stderr)
		fprintf(stderr, "kickgated[%s]: %s\n", log_role, line);
	else
		syslog(prio, "%s: %s", log_role, line);
}

void kg_log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kg_vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

void kg_log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kg_vlog(LOG_WARNING, fmt, ap);
	va_end(ap);
}

void kg_log_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kg_vlog(LOG_ERR, fmt, ap);
	va_end(ap);
}
