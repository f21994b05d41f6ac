"""A 2025-11-25 session of the official MCP Python SDK client, driven line by line from stdin,
for tests/replicas.rs: it initializes once, then for each line `call <tool> <json arguments>`
calls the tool in the same session and prints one JSON line with the outcome. It never
initializes again: a session that no replica can serve shows as an error line.

    python_session.py <MCP URL> <bearer token>
"""

import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


async def main(url: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with streamablehttp_client(url, headers=headers) as (read, write, session_id):
        async with ClientSession(read, write) as session:
            await session.initialize()
            print(json.dumps({"session": session_id()}), flush=True)
            while line := await asyncio.to_thread(sys.stdin.readline):
                _, tool, arguments = line.strip().split(" ", 2)
                try:
                    result = await asyncio.wait_for(session.call_tool(tool, json.loads(arguments)), 20)
                    text = "".join(c.text for c in result.content if c.type == "text")
                    outcome = {"ok": not result.isError, "text": text, "session": session_id()}
                except Exception as error:  # noqa: BLE001 - reported to the test as it is
                    outcome = {"ok": False, "error": f"{type(error).__name__}: {error}"}
                print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
