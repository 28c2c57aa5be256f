/* SPDX-License-Identifier: MIT */
/* The frontend role's entry: kickgated --frontend, as the supervisor
 * execs it for one client connection. */
#ifndef KG_FRONTEND_MAIN_H
#define KG_FRONTEND_MAIN_H

/* argv: kickgated --frontend UID GID TIMEOUT_MS stderr|syslog, with the
 * client at fd 3 and the supervisor at fd 4 (frontend/serve.h). Enters
 * the frontend's sandbox and serves that one client; never returns.
 * Exits 64 when argv is not what the supervisor passes. */
_Noreturn void kg_frontend_role(int argc, char **argv);

#endif
