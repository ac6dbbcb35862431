"""What programs call: the rooms API (/api/), the direct SSE path (/chat) and the OpenAI-compatible
endpoint (/v1), with one bearer-key check, one conversation schema and one SSE writer."""
