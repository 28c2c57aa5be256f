/* SPDX-License-Identifier: MIT */
/* The frontend's account, checked against the running system. The
 * frontend parses hostile input: whoever takes it over acts with its uid,
 * so that uid must be of no use beyond it. An account other processes
 * run as could be signalled, traced or read through /proc by a
 * compromised frontend; one that is nobody is shared by design. */
#ifndef KG_FRONTEND_ACCOUNT_H
#define KG_FRONTEND_ACCOUNT_H

#include <stdio.h>

#include "policy/config.h"

/* Resolves cfg->frontend_user into cfg->frontend_uid and frontend_gid.
 * Refused, each with one line "PATH:LINE: message" on errs (when not
 * NULL) that says how to create a dedicated account: an unknown name;
 * nobody (by name or uid); uid or gid 0; broker_user's uid; an account
 * that, at the time of the check, is the real or effective uid of a
 * process other than kickgated's own (a process named kickgated whose
 * parent is a root process named kickgated). Returns the number of
 * errors (0 or 1). */
int kg_frontend_account_check(struct kg_config *cfg, const char *path,
                              FILE *errs);

/* kg_config_load, then kg_frontend_account_check when the file had no
 * error: what kickgated -t, start-up and a reload check. */
int kg_config_load_for_daemon(const char *path, struct kg_config *cfg,
                              FILE *errs);

#endif
