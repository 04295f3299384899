/* gateway: the `tidegate serve` process, wired together.
 *
 * Loads the model, starts the scheduler, the engine bridge, the metrics
 * registry and the HTTP server on one libuv loop, logs
 * `listening addr=<host> port=<port>` once bound, and runs until SIGTERM or
 * SIGINT. Shutdown is graceful: the listener closes, /readyz answers 503,
 * in-flight requests may finish within server.shutdown_grace_ms; streams
 * still running at the deadline end with an error event. A second signal
 * ends them at once. Returns the process exit code (0 after a clean
 * shutdown, 1 when startup fails). */
#ifndef TG_GATEWAY_H
#define TG_GATEWAY_H

#include "config/config.h"

int tg_gateway_run(const tg_config *cfg);

#endif
