"""The floor of a Python proxy hop, for benchmarks/gateway.py: an ASGI app that forwards each request's body to
one upstream and returns its answer, nothing else (no routing, no auth, no logging, no streaming relay), on the
same server stack as the gateway (uvicorn with httptools and uvloop when installed) and the same upstream client
(aiohttp, one pooled session).

Run:  python benchmarks/minimal_proxy.py PORT UPSTREAM_BASE_URL     (127.0.0.1 only)
"""

from __future__ import annotations

import sys
from typing import Any

import aiohttp
import uvicorn

from banditroute.testing_upstreams import read_body

_session: aiohttp.ClientSession | None = None


def make_app(upstream: str) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        global _session
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    if _session is not None:
                        await _session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = await read_body(receive)
        if _session is None:
            _session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        headers = {"content-type": "application/json"}
        async with _session.post(upstream + scope["path"], data=body, headers=headers) as r:
            data = await r.read()
            ctype = r.headers.get("content-type", "application/json").encode()
        await send({"type": "http.response.start", "status": r.status, "headers": [(b"content-type", ctype)]})
        await send({"type": "http.response.body", "body": data})

    return app


def main() -> None:
    port, upstream = int(sys.argv[1]), sys.argv[2].rstrip("/")
    if not upstream.startswith("http://127.0.0.1:"):
        raise SystemExit("the upstream must be on 127.0.0.1")
    uvicorn.run(make_app(upstream), host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
