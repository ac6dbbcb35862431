"""The settings every benchmark's server process runs with: production's, on plain HTTP over loopback."""

# DEBUG off (no query log, no debug pages), a fixed key, and no HTTPS redirect or secure-only
# cookies: the benchmarks' clients speak plain HTTP to 127.0.0.1.
AS_PRODUCTION = {
    "DEBUG": "false", "SECRET_KEY": "benchmark", "ALLOWED_HOSTS": "127.0.0.1", "SECURE_SSL_REDIRECT": "false",
    "SECURE_COOKIES": "false",
}
