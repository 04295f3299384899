/* dispatch: the one step between the OpenAI API and the targets that answer.
 * Today it resolves a request's target to the embedded engine (routing,
 * cloud failover and the journal plug in here later). Owned by the gateway
 * work; see docs/architecture.md. */
#ifndef RT_DISPATCH_H
#define RT_DISPATCH_H
#endif
