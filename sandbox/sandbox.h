/* SPDX-License-Identifier: MIT */
/* Confinement of kickgated's two processes. Each role has one entry point,
 * called after all privileged set-up and before any client byte is read.
 * The tests enter the sandboxes through these same functions.
 *
 * Each role stacks three layers, in this order: privileges (ids,
 * capabilities, no_new_privs, not dumpable), Landlock (where the kernel
 * has it; its absence is logged once and tolerated) and a seccomp
 * allowlist whose default is to kill the process. SECURITY.md lists what
 * each process can and cannot do. */
#ifndef KG_SANDBOX_H
#define KG_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* policy/config.h: a broker_user's ids. Only declared, so that the
 * frontend, which includes this header, sees nothing of the policy. */
struct kg_ids;

enum kg_sandbox_role {
	KG_SANDBOX_FRONTEND,
	KG_SANDBOX_BROKER, /* signals Dovecot's processes itself */
	/* Every instance is Dovecot 2.4's, whose anvil does the kicks: no
	 * capability, no signal. */
	KG_SANDBOX_BROKER_ANVIL_KICKS,
};

/* Frontend: empty chroot, runs as uid/gid with no supplementary groups and
 * no capabilities, no_new_privs, not dumpable, no filesystem access, no
 * signals and no abstract sockets (Landlock), seccomp. Must start as root.
 * Returns 0, or -1 after logging why. */
int kg_sandbox_frontend(uid_t uid, gid_t gid);

/* Broker: runs as ids (uid 0: keeps root's ids), empty bounding and
 * ambient sets, locked securebits, no_new_privs, not dumpable; Landlock
 * lets it read files beneath /proc and nothing else, and reach no
 * abstract socket; seccomp. With signals, it keeps CAP_KILL (permitted
 * and effective) and may send SIGTERM and signal 0 through pidfds;
 * without (anvil does every kick), it keeps no capability at all, may
 * send no signal, and Landlock scopes signals too. Must start as root.
 * Returns 0, or -1 after logging why. */
int kg_sandbox_broker(const struct kg_ids *ids, bool signals);

/* Two of the layers the entries stack, one at a time. Layers overlap (a
 * write open is refused by seccomp and by Landlock), so only a test of
 * each layer alone notices when one of them loses a rule; seccomp's
 * verdict, SIGSYS, comes from no other layer. Each returns 0, or -1
 * after logging why. */
int kg_sandbox_frontend_privileges(uid_t uid, gid_t gid);
int kg_sandbox_broker_privileges(const struct kg_ids *ids, bool signals);
int kg_sandbox_landlock(enum kg_sandbox_role role);

/* Every filesystem right of Landlock ABI abi, all of which both rulesets
 * handle: a right left unhandled would stay allowed everywhere. */
uint64_t kg_sandbox_fs_rights(int abi);

#endif
