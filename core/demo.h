/* core/demo.h — built-in origin servers for `ringlb demo`. */
#ifndef RLB_DEMO_H
#define RLB_DEMO_H

#include "core/config.h"

#include <stddef.h>

/* demo_start_origins starts `n` origin servers on 127.0.0.1 ephemeral
 * ports, each in its own thread for the life of the process, and writes
 * their addresses ("127.0.0.1:PORT") into out[i].text. Returns 1, or 0 with
 * a message. */
int demo_start_origins(int n, struct config_addr *out, char *err, size_t err_len);

#endif
