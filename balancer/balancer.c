/* balancer/balancer.c — the registry of algorithms. */
#include "balancer/balancer.h"

#include <string.h>

static const struct balancer_ops *const all_ops[] = {
        &balancer_round_robin, &balancer_weighted_round_robin,
        &balancer_least_conn,  &balancer_weighted_least_conn,
        &balancer_random_two,  &balancer_least_time,
        &balancer_hash,        &balancer_resource,
};

const struct balancer_ops *balancer_find(const char *name)
{
	/* ip_hash is the hash algorithm keyed on the client address. */
	if (strcmp(name, "ip_hash") == 0)
		return &balancer_hash;
	for (size_t i = 0; i < sizeof(all_ops) / sizeof(all_ops[0]); i++)
		if (strcmp(all_ops[i]->name, name) == 0)
			return all_ops[i];
	return NULL;
}

const char *balancer_names(void)
{
	return "round_robin, weighted_round_robin, least_conn, weighted_least_conn, random_two, "
	       "least_time, ip_hash, hash, resource";
}
