"""Parley settings: 12-factor, every value from the environment, defaults that run on a fresh machine."""

import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default=False):
    """Read a yes/no environment variable."""
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    """Read a comma-separated environment variable."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set SECRET_KEY: it is required when DEBUG is off.")
    SECRET_KEY = "django-insecure-parley-development-only"
elif not DEBUG and re.search(r"change[-_ ]?me|^django-insecure", SECRET_KEY, re.IGNORECASE):
    # A key copied from an example signs everyone's sessions with a secret the whole world knows.
    raise ImproperlyConfigured(
        "Set SECRET_KEY to a long random string of your own, not a placeholder: "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]" if DEBUG else "")
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Set ALLOWED_HOSTS (comma-separated host names): it is required when DEBUG is off.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "chat.web.stale.csrf_failure"  # an out-of-date page's form: the app's page, not Django's

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    # django-ninja's own Swagger UI files for /api/docs (without it the page loads them from a CDN).
    "ninja",
    "chat",
    "bots",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Every page's Content-Security-Policy (Django 5.2 has none built in).
    "chat.web.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The person's language: their choice (set_language's cookie), else Accept-Language, else English.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A view that finds the database away answers 503 with Retry-After, not 500.
    "project.unavailable.DatabaseUnavailable",
    # Last: it looks every request's path up among the static files (its finders, on every request);
    # first, that lookup would come before every page and post instead of only before the views.
    "whitenoise.middleware.WhiteNoiseMiddleware",
]

ROOT_URLCONF = "project.urls"
ASGI_APPLICATION = "project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "chat.web.context_processors.parley",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Kept: pages and posts run on one long-lived thread (chat/server/threads.py), and a new
        # connection per request cost more CPU than the page itself.
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets pages read while a reply writes; IMMEDIATE transactions take the write lock up front,
    # so two writers wait their turn (busy timeout) instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", "timeout": 20,
         "transaction_mode": "IMMEDIATE"}
    )
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}

# One Redis URL, or several separated by commas: the channel layer is sharded over all of them by
# channels-redis's own hash of each room's group name (it does not support Redis Cluster); the cache,
# and with it presence and the rate-limit counters, lives on the first.
REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_URLS = env_list("REDIS_URL")
if REDIS_URLS:
    CHANNEL_LAYERS = {
        "default": {
            # channels-redis's pub/sub layer: a process's fan-out holds one subscription per room and
            # Redis pushes each frame to it, with no round trip per message. Parley's subclass makes
            # the room pages reconnect and catch up when a connection to Redis comes back after a drop.
            "BACKEND": "chat.delivery.layer.RoomLayer",
            "CONFIG": {
                # redis-py 8 raises "Too many connections" past its pool size and times out idle
                # reads after 5 s: widen both.
                "hosts": [
                    {
                        "address": url,
                        "max_connections": 1000,
                        "socket_timeout": 15,
                        # A subscription that went quiet because its connection died is found
                        # by a ping this often, and reconnects.
                        "health_check_interval": 10,
                    }
                    for url in REDIS_URLS
                ],
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 1500}}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en"
# The interface's languages (README: "Languages"); personas and people's words are never translated.
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    # Front-end packages come from npm (package-lock.json) and are served as they are.
    ("vendor/turbo", BASE_DIR / "node_modules" / "@hotwired" / "turbo" / "dist"),
    ("vendor/fetch-event-source", BASE_DIR / "node_modules" / "@microsoft" / "fetch-event-source" / "lib" / "esm"),
]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    # Production defaults pass `manage.py check --deploy`; a plain-HTTP demo (docker-compose.yml)
    # turns them off explicitly.
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # the load balancer checks over plain HTTP
    # Only a proxy of our own may say the request came over HTTPS: without one, anyone could send the header.
    if env_bool("BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)

LOGGING = {
    "version": 1,
    # Keep Daphne's and Channels' loggers: they report "Exception inside application".
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # httpx2 logs every request to the model at INFO: one line per reply is enough (the reply log).
    "loggers": {"django.channels.server": {"level": "WARNING"}, "httpx2": {"level": "WARNING"}},
}

# --- Parley -------------------------------------------------------------------------------------

# Dotted path of the LLM provider class; empty means: openai when OPENAI_API_KEY is set, else local.
LLM_PROVIDER = os.environ.get("LLM_PROVIDER", "")
OPENAI_API_KEY = os.environ.get("OPENAI_API_KEY", "")
OPENAI_BASE_URL = os.environ.get("OPENAI_BASE_URL", "")
OPENAI_MODEL = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
OPENAI_TIMEOUT = float(os.environ.get("OPENAI_TIMEOUT", "30"))
OPENAI_MAX_RETRIES = int(os.environ.get("OPENAI_MAX_RETRIES", "2"))
# The served model's context window in tokens: prompts are cut to fit it beside the reply.
OPENAI_CONTEXT_TOKENS = int(os.environ.get("OPENAI_CONTEXT_TOKENS", "8192"))
LOCAL_MODEL_PATH = os.environ.get("LOCAL_MODEL_PATH", "")
LOCAL_CONTEXT_TOKENS = int(os.environ.get("LOCAL_CONTEXT_TOKENS", "2048"))
# Seconds the local model's process may stay silent (it sends a keep-alive every 5 s, even while
# it waits its turn) before it is taken for hung, the reply fails, and the process is replaced.
LOCAL_MODEL_TIMEOUT = float(os.environ.get("LOCAL_MODEL_TIMEOUT", "20"))
# The model process's niceness: it computes below the web process, so pages and sockets stay quick.
LOCAL_MODEL_NICE = int(os.environ.get("LOCAL_MODEL_NICE", "5"))

# Bots and rooms are rows; each process keeps a copy and asks the shared cache this often, in seconds,
# whether an edit changed them: an edit reaches every process's next reply within this time.
REGISTRY_CHECK_INTERVAL = float(os.environ.get("REGISTRY_CHECK_INTERVAL", "0.5"))

# How often a streaming reply's row is written and its growth broadcast, in seconds: ten updates a
# second read as smooth text (peers coalesce over 33 to 150 ms), whatever the model's token rate.
# The first text of a reply goes out at once. Each flush is a row write and a small frame to every
# page; a larger interval costs less and looks lumpier; 0 writes every chunk.
REPLY_FLUSH_INTERVAL = float(os.environ.get("REPLY_FLUSH_INTERVAL", "0.1"))
# Longest reply, in tokens, asked of the model.
REPLY_MAX_TOKENS = int(os.environ.get("REPLY_MAX_TOKENS", "512"))
# Prompt budget in characters for a room's history (about four characters a token).
PROMPT_HISTORY_CHARS = int(os.environ.get("PROMPT_HISTORY_CHARS", "6000"))
# How many messages a room page shows.
ROOM_PAGE_MESSAGES = int(os.environ.get("ROOM_PAGE_MESSAGES", "50"))
# PostgreSQL's text search configuration for search ("simple": every language matched word for
# word; "english" stems English). Documents are built with it: rebuild them after changing it
# (./parley manage rebuild_search).
SEARCH_CONFIG = os.environ.get("SEARCH_CONFIG", "simple")
# Unread: counts in the lobby stop at this many (a room never read is counted this far, no further).
UNREAD_COUNT_MAX = int(os.environ.get("UNREAD_COUNT_MAX", "100"))
# A visible room page tells the server what it has read at most this often, in seconds.
READ_MARK_INTERVAL = float(os.environ.get("READ_MARK_INTERVAL", "5"))
# "Catch me up": offered from this many unread messages; the bot of a room without its own; the
# most (newest) unread messages read for one summary, before fitting them to the model's context.
CATCH_UP_MIN_UNREAD = int(os.environ.get("CATCH_UP_MIN_UNREAD", "10"))
CATCH_UP_BOT = os.environ.get("CATCH_UP_BOT", "ChatBot")
CATCH_UP_MAX_MESSAGES = int(os.environ.get("CATCH_UP_MAX_MESSAGES", "500"))
# Longest user message, in characters.
MESSAGE_MAX_CHARS = int(os.environ.get("MESSAGE_MAX_CHARS", "4000"))
# A pending or streaming reply untouched this long, in seconds, belongs to a dead process.
REPLY_STALE_AFTER = float(os.environ.get("REPLY_STALE_AFTER", "30"))
# How often each process sweeps for such replies, in seconds.
REPLY_SWEEP_INTERVAL = float(os.environ.get("REPLY_SWEEP_INTERVAL", "10"))

# The direct SSE path (/chat): a keep-alive comment this often while the model is silent, in seconds,
# and the size of what a client may send.
SSE_KEEPALIVE = float(os.environ.get("SSE_KEEPALIVE", "15"))
SSE_MAX_MESSAGES = int(os.environ.get("SSE_MAX_MESSAGES", "50"))
SSE_MAX_QUERY = int(os.environ.get("SSE_MAX_QUERY", "4096"))
SSE_MAX_BODY = int(os.environ.get("SSE_MAX_BODY", "262144"))

# What Daphne reads of a request, checked before Django sees it. The largest body any endpoint takes
# is SSE_MAX_BODY (/chat, /v1); past MAX_BODY_BYTES a request gets 413 at once from its
# Content-Length, or when a chunked body crosses it, and is never read further. A request's line and
# headers must arrive within HTTP_HEADER_TIMEOUT seconds of the connection opening or the previous
# response ending (also how long an idle keep-alive connection stays), its body within
# HTTP_BODY_TIMEOUT seconds after them: fixed deadlines, so a client trickling bytes cannot hold a
# connection open.
MAX_BODY_BYTES = int(os.environ.get("MAX_BODY_BYTES", str(320 * 1024)))
HTTP_HEADER_TIMEOUT = float(os.environ.get("HTTP_HEADER_TIMEOUT", "10"))
HTTP_BODY_TIMEOUT = float(os.environ.get("HTTP_BODY_TIMEOUT", "30"))

# Messages a minute one client (API key, account or guest) may send into rooms, and a room may take.
RATE_LIMIT_PER_CLIENT = int(os.environ.get("RATE_LIMIT_PER_CLIENT", "10"))
RATE_LIMIT_PER_ROOM = int(os.environ.get("RATE_LIMIT_PER_ROOM", "60"))
# Messages (and /chat, /v1 requests) a minute from one address, whatever cookies or keys it shows:
# 0 means one client's figure. Raise it when many people share an address (an office, a campus).
RATE_LIMIT_PER_ADDRESS = int(os.environ.get("RATE_LIMIT_PER_ADDRESS", "0"))
# Votes a minute from one client, and from one address.
RATE_LIMIT_VOTES = int(os.environ.get("RATE_LIMIT_VOTES", "30"))
# /chat and /v1 requests a minute from one client (0: RATE_LIMIT_PER_CLIENT) and to one bot:
# budgets of their own, so they never spend a room's.
RATE_LIMIT_STATELESS_PER_CLIENT = int(os.environ.get("RATE_LIMIT_STATELESS_PER_CLIENT", "0"))
RATE_LIMIT_STATELESS_PER_BOT = int(os.environ.get("RATE_LIMIT_STATELESS_PER_BOT", "60"))
# Behind a proxy that appends X-Forwarded-For, count clients by the address it appended (the right-most).
TRUST_X_FORWARDED_FOR = env_bool("TRUST_X_FORWARDED_FOR", False)
# Failed log-ins (people's and the admin's) allowed per account and per address in a window of
# LOGIN_FAILURE_WINDOW seconds; past either, log-ins from there answer 429 until the window ends.
LOGIN_FAILURES_PER_ACCOUNT = int(os.environ.get("LOGIN_FAILURES_PER_ACCOUNT", "5"))
LOGIN_FAILURES_PER_ADDRESS = int(os.environ.get("LOGIN_FAILURES_PER_ADDRESS", "20"))
LOGIN_FAILURE_WINDOW = int(os.environ.get("LOGIN_FAILURE_WINDOW", "900"))
# Sign-up at /accounts/signup/: "open" (anyone may make an account) or "closed" (staff make them in the admin).
SIGNUP = os.environ.get("SIGNUP", "open")
# Who may create rooms at /rooms/new: "signed_in" (anyone signed in), "staff", or "off".
ROOM_CREATION = os.environ.get("ROOM_CREATION", "signed_in")
# Each answer from the app says how long the app held it (Server-Timing: app;dur=<ms>). Off unless
# DEBUG: to any client it times a request without the network's noise (a private room's 404 against
# a missing room's, say).
SERVER_TIMING = env_bool("SERVER_TIMING", DEBUG)
# Threads a process runs its pages' and posts' synchronous code on (each keeps a database connection).
VIEW_THREADS = int(os.environ.get("VIEW_THREADS", "4"))
# Seconds a thread may hold the interpreter lock while another waits for it (Python's own: 0.005).
# Shorter, the event loop gets it back sooner from a view's thread, for more CPU (see the README).
THREAD_SWITCH_INTERVAL = float(os.environ.get("THREAD_SWITCH_INTERVAL", "0.005"))
# The server's long-lived heap is collected and frozen every HEAP_FREEZE_INTERVAL seconds (0: never),
# out of the garbage collector's reach, and thawed and collected whole once a quarter of the room
# sockets frozen open (at least 100) have closed, or every HEAP_THAW_INTERVAL (chat/server/heap.py).
HEAP_FREEZE_INTERVAL = float(os.environ.get("HEAP_FREEZE_INTERVAL", "5"))
HEAP_THAW_INTERVAL = float(os.environ.get("HEAP_THAW_INTERVAL", "600"))
# Tries at /rooms/new (a POST, made or refused) an hour from one account, and from one address.
ROOM_CREATIONS_PER_HOUR = int(os.environ.get("ROOM_CREATIONS_PER_HOUR", "10"))
# Room replies this process streams at once; more wait their turn.
MAX_STREAMING_REPLIES = int(os.environ.get("MAX_STREAMING_REPLIES", "8"))
# /chat and /v1 replies this process streams at once, in slots of their own; more wait their turn.
MAX_STATELESS_STREAMS = int(os.environ.get("MAX_STATELESS_STREAMS", "4"))
# How often each process clears expired sessions from the database, in seconds (0: never; then
# run `./parley manage clearsessions` on a schedule of your own).
CLEAR_SESSIONS_INTERVAL = float(os.environ.get("CLEAR_SESSIONS_INTERVAL", "3600"))

# Hostile clients: a response waits this many seconds for a client that reads nothing (its
# connection's buffer full) before closing it; a room event stream resumed more than this many
# events behind gets `event: reset` instead of the replay; open event streams per API key and room
# sockets per address, each per process.
SEND_STALL_TIMEOUT = float(os.environ.get("SEND_STALL_TIMEOUT", "20"))
EVENT_REPLAY_MAX = int(os.environ.get("EVENT_REPLAY_MAX", "1000"))
EVENT_STREAMS_PER_KEY = int(os.environ.get("EVENT_STREAMS_PER_KEY", "20"))
ROOM_SOCKETS_PER_ADDRESS = int(os.environ.get("ROOM_SOCKETS_PER_ADDRESS", "50"))
# A room socket whose client stops reading is closed once this many bytes of its frames wait in the
# process (past the one being written); its kernel send buffer is set to the same figure.
SOCKET_MAX_UNSENT_BYTES = int(os.environ.get("SOCKET_MAX_UNSENT_BYTES", "16384"))

# Rate-limit counters: in Redis when there is one, so every process counts together.
CACHES = {
    "default": (
        {
            # Django's RedisCache with one client a process (Django's makes one per request).
            "BACKEND": "chat.cache.ProcessRedisCache",
            # The first Redis host only: the others carry rooms' frames, not counters or presence.
            "LOCATION": REDIS_URLS[0] if REDIS_URLS else "",
            # Several Parleys (or test runs) can share one Redis with prefixes of their own.
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "parley"),
        }
        if REDIS_URLS
        else {"BACKEND": "chat.cache.LocalCache"}  # Django's in-process cache, counting as the Redis one
    )
}
