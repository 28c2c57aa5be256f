/* SPDX-License-Identifier: MIT */
/* The frontend role's entry: kickgated --frontend, as the supervisor
 * execs it for one client connection, ahead of the connection. */
#ifndef KG_FRONTEND_MAIN_H
#define KG_FRONTEND_MAIN_H

/* argv: kickgated --frontend UID GID stderr|syslog, with the supervisor
 * at fd 4 (frontend/serve.h). Enters the frontend's sandbox, then takes
 * the one client the supervisor hands over on fd 4 and serves it; never
 * returns. Exits 64 when argv is not what the supervisor passes. */
_Noreturn void kg_frontend_role(int argc, char **argv);

#endif
