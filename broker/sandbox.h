/* Confinement of kickgated's two processes. Each role has one entry point,
 * called after all privileged set-up and before any client byte is read.
 * The tests enter the sandboxes through these same functions. */
#ifndef KG_SANDBOX_H
#define KG_SANDBOX_H

#include <sys/types.h>

/* Frontend: empty chroot, runs as uid/gid with no supplementary groups and
 * no capabilities, no_new_privs, not dumpable, seccomp. Must start as
 * root. Returns 0, or -1 after logging why. */
int kg_sandbox_frontend(uid_t uid, gid_t gid);

/* Broker: keeps its uid, only CAP_KILL (permitted and effective), empty
 * bounding and ambient sets, locked securebits, no_new_privs, not
 * dumpable, seccomp. Must start as root. Returns 0, or -1 after logging. */
int kg_sandbox_broker(void);

#endif
