/* core/admin.h — the admin listener: a small JSON API for live changes.
 *
 * One thread of the control side serves it, one connection at a time, on
 * its own address (127.0.0.1 by default). It lists pools and backends with
 * their state and load, and adds, removes, drains and re-weights backends.
 * Each change edits the control plane's configuration and publishes a new
 * snapshot through RCU: shards pick it up between two loop turns, nothing
 * is dropped, and requests in flight finish where they are.
 *
 * API (JSON in and out; "Authorization: Bearer TOKEN" when a token is set):
 *   GET    /api/pools
 *   POST   /api/pools/POOL/backends               {"address": "IP:PORT", "weight": N}
 *   DELETE /api/pools/POOL/backends/IP:PORT
 *   POST   /api/pools/POOL/backends/IP:PORT/drain
 *   PUT    /api/pools/POOL/backends/IP:PORT/weight {"weight": N}
 */
#ifndef RLB_ADMIN_H
#define RLB_ADMIN_H

#include "core/config.h"
#include "core/snapshot.h"
#include "tls/tls.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* What the control thread and the admin thread share. `lock` serialises
 * every change of `cfg`'s pools and every snapshot publication (SIGHUP
 * reloads and admin changes); shards never take it. */
struct control_plane {
	pthread_mutex_t lock;
	struct config *cfg; /* pools and routes of the current snapshot */
	struct uid_registry *reg;
	uint64_t version;
	struct tls_server *tls[CONFIG_LISTENERS_MAX]; /* per listener; NULL = plain */
};

/* control_publish builds a snapshot from cp->cfg, publishes it and frees
 * the previous one after a grace period. `reread`: read the allow list
 * files and compile the filters again (a reload); else they are shared with
 * the running snapshot (an admin API change to pools). Call with cp->lock held. Returns
 * 1, or 0 with a message (the running snapshot stays). */
int control_publish(struct control_plane *cp, bool reread, char *err, size_t err_len);

/* control_reload_tls loads the certificates, keys and TLS settings of
 * `from`'s listeners (matched to the running ones by index and address)
 * and, only if every TLS listener's load succeeds, makes them what new
 * connections get. A listener whose TLS section `from` lacks reloads its
 * running settings. Call with cp->lock held. Returns the number of TLS
 * listeners reloaded, or -1 with a message (nothing changed). */
int control_reload_tls(struct control_plane *cp, const struct config *from, char *err,
                       size_t err_len);

/* admin_bind binds the admin listener when cp->cfg->admin is enabled; it
 * runs before privileges are dropped, like the other listeners. Returns 1
 * (also when disabled), or 0 with a message (the API stays off). */
int admin_bind(struct control_plane *cp, char *err, size_t err_len);

/* admin_start starts the admin thread on the listener admin_bind bound.
 * Returns 1 (also when there is none), or 0 with a message. */
int admin_start(struct control_plane *cp, char *err, size_t err_len);

/* admin_stop stops the admin thread and closes the listener; safe when
 * either was never made. */
void admin_stop(void);

#endif
