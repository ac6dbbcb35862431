"""The reply job: room workers, the writer that streams a reply into its row, and what they lean on."""
