"""Exit 0 when PostgreSQL and Redis answer at the given URLs, else say which does not and exit 1."""

import sys

import psycopg
import redis


def main(database_url, redis_url):
    problems = []
    try:
        psycopg.connect(database_url, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not there"
        problems.append(f"PostgreSQL at {database_url}: {exc}")
    try:
        redis.Redis.from_url(redis_url, socket_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"Redis at {redis_url}: {exc}")
    for problem in problems:
        print(f"not answering: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
