/* SPDX-License-Identifier: MIT */
#include "proto/reply_send.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

int kg_send_packet(void *ctx, const uint8_t *pkt, size_t len)
{
	int fd = *(const int *)ctx;
	ssize_t n;

	do
		n = send(fd, pkt, len, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)len ? 0 : -1;
}

void kg_end_set_error(struct kg_reply_end *end, const char *text)
{
	size_t len = strlen(text);

	if (len > KG_ERRTEXT_MAX) {
		/* Cut before a UTF-8 continuation byte, never inside a
		 * character: the decoder rejects broken UTF-8. */
		len = KG_ERRTEXT_MAX;
		while (len > 0 && ((unsigned char)text[len] & 0xc0) == 0x80)
			len--;
	}
	memcpy(end->error, text, len);
	end->error[len] = '\0';
	end->error_len = (uint16_t)len;
}

int kg_reply_error(int fd, uint8_t status, const char *text)
{
	/* An end packet is small: a stack writer would waste 96 KiB of stack
	 * on the record buffer, so encode through a static one. */
	static struct kg_reply_writer w;
	struct kg_reply_end end = {.status = status};

	kg_end_set_error(&end, text);
	kg_rw_init(&w, kg_send_packet, &fd);
	return kg_rw_end(&w, &end);
}
