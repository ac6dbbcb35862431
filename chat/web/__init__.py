"""The web endpoints: pages, form posts, the direct SSE path, and what they check on the way in."""
