/* SPDX-License-Identifier: MIT */
/* The broker role's entry: kickgated --broker, as the supervisor execs it
 * for each configuration it loads. */
#ifndef KG_BROKER_MAIN_H
#define KG_BROKER_MAIN_H

/* The descriptors the supervisor hands an exec'd broker: its channel,
 * whose first message is the listening socket's address, and a sealed
 * memfd holding the configuration's bytes. */
#define KG_BROKER_CHANNEL_FD 3
#define KG_BROKER_CONFIG_FD  4

/* argv: kickgated --broker CONFIG_NAME stderr|syslog. Parses the bytes
 * the supervisor checked (not the file, which may have changed since),
 * then runs kg_broker_main. Exits 64 on a wrong argv or start message,
 * 78 when the bytes do not parse (each error logged), 1 otherwise. */
_Noreturn void kg_broker_role(int argc, char **argv);

#endif
