"""History for operators: the admin's messages, transcripts and token usage."""
