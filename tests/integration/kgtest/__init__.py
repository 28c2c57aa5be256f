# SPDX-License-Identifier: MIT
"""Harness for kickgate's integration tests: a private Dovecot 2.3,
real IMAP/POP3 sessions and throwaway Unix accounts."""
