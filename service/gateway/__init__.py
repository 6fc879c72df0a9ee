"""The OpenAI-compatible gateway: upstreams from a TOML file, forwarding with fallbacks and circuit breakers,
cost from usage x prices, and an optional judge that posts evaluator feedback.

    config     the upstreams file (``[models.*]``, ``[gateway]``, ``[evaluator]``), validated at start
    breaker    a per-upstream circuit breaker (per worker process)
    cost       usage x prices, and a local token count when the upstream sends no usage
    upstream   one attempt against one upstream (non-streaming or streaming)
    forward    the attempt loop: first choice, then fallbacks by the policy's distribution
    judge      the bounded background queue of evaluator calls
    runtime    the ``Gateway`` object the app opens in its lifespan (pooled client, breakers, judge)
"""
