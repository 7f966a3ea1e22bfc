/* core/shard.h — shard threads: start, stop, and what the control thread
 * reads from them.
 *
 * A shard is one thread pinned to one CPU with its own io_uring ring, its
 * own SO_REUSEPORT listening sockets, connection slabs, upstream pools,
 * timer wheel and counters. Shards share nothing on the request path; they
 * read the configuration snapshot through RCU (QSBR) and hand access-log
 * lines to the control thread through a single-producer queue.
 */
#ifndef RLB_SHARD_H
#define RLB_SHARD_H

#include "core/conn.h"

#include <stddef.h>

/* shard_bind_all makes `n` shards for `cfg` (which must outlive them) and
 * binds each one's listening sockets, one per listener per shard
 * (SO_REUSEPORT), on the calling thread: the main thread, before it drops
 * privileges. Returns the array, or NULL with "listen ADDR: why" in err
 * (nothing stays open). */
struct shard *shard_bind_all(const struct config *cfg, uint32_t n, char *err, size_t err_len);

/* shard_unbind_all closes the sockets of `n` shards that were bound but
 * never started, and frees the array. */
void shard_unbind_all(struct shard *shards, uint32_t n);

/* shard_start_all starts the threads of the `n` shards shard_bind_all
 * made and waits until each has its ring. tls[i] is listener i's TLS
 * server (NULL: plain); `tls` may be NULL. Returns 1, or 0 with a message
 * in err, having stopped every started shard and freed the array. */
int shard_start_all(struct shard *shards, uint32_t n, struct tls_server *const *tls, char *err,
                    size_t err_len);

/* shard_request_stop asks every shard to stop accepting and to finish its
 * in-flight requests within timeouts.drain. Safe from any thread. */
void shard_request_stop(void);

/* shard_join_all waits for the `n` shards to exit and frees them. Returns
 * 0 if all exited cleanly. `poll` runs about every 100 ms while waiting
 * (the control thread drains access logs there). */
int shard_join_all(struct shard *shards, uint32_t n, void (*poll)(void *), void *arg);

/* shard_all_exited says whether every shard has left its loop. */
bool shard_all_exited(void);

/* shard_alog_pop takes one queued access-log line from shard `s` into
 * out (NUL-terminated). Returns its length, 0 when the queue is empty.
 * Control thread only. */
size_t shard_alog_pop(struct shard *s, char *out, size_t cap);

#endif
