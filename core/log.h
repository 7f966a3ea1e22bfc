/* core/log.h — the error log: one line per event on stderr.
 *
 * Error-log lines are rare events (start-up, refusals at debug level,
 * backend failures), written with one write(2) each so lines from several
 * shards never interleave. The access log is separate: shards queue its
 * lines and the control thread writes them (see shard.h).
 */
#ifndef RLB_LOG_H
#define RLB_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* rlb_log_level is the most verbose level written; set once at start-up. */
extern int rlb_log_level;

/* rlb_log writes one formatted line at `level`, if enabled. */
__attribute__((format(printf, 2, 3))) void rlb_log(int level, const char *fmt, ...);

#endif
