/* Confinement of kickgated's two processes. Each role has one entry point,
 * called after all privileged set-up and before any client byte is read.
 * The tests enter the sandboxes through these same functions.
 *
 * Each role stacks four layers: capabilities and ids, no_new_privs and
 * not dumpable, Landlock (where the kernel has it; its absence is logged
 * once and tolerated) and a seccomp allowlist whose default is to kill the
 * process. SECURITY.md lists what each process can and cannot do. */
#ifndef KG_SANDBOX_H
#define KG_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

/* Frontend: empty chroot, runs as uid/gid with no supplementary groups and
 * no capabilities, no_new_privs, not dumpable, no filesystem access, no
 * signals and no abstract sockets (Landlock), seccomp. Must start as root.
 * Returns 0, or -1 after logging why. */
int kg_sandbox_frontend(uid_t uid, gid_t gid);

/* Broker: keeps its uid, only CAP_KILL (permitted and effective), empty
 * bounding and ambient sets, locked securebits, no_new_privs, not
 * dumpable, seccomp. Landlock lets it read files only beneath /proc, in
 * /etc/passwd (the audit line names the caller) and in the directory of
 * each instance's anvil socket (master.pid), and reach no abstract
 * socket. A directory missing at start is logged and left out. Must start
 * as root. Returns 0, or -1 after logging why. */
int kg_sandbox_broker(const struct kg_instance *instances, size_t n);

#endif
