"""Settings for langflow_site, read from the environment with safe local defaults.

Every variable is documented in `.env.example`.
"""

import base64
import os
from pathlib import Path

import environ

from langflow_site.datadir import BASE_DIR, data_dir, default_database_url, env, read_secret

# Created by the entry points before this module is read (langflow_site.datadir.prepare).
DATA_DIR = data_dir()

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="") or read_secret("secret_key")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "users.apps.SiteAdminConfig",  # django.contrib.admin, its sign-in throttled
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "users",
    "apikeys",
    "flows",
    "files",
    "variables",
    "knowledge",
    # Webhooks and their background runs (django-tasks, jobs kept in the database: webhooks/).
    "django_tasks",
    "django_tasks_db",
    "webhooks",
    "core.apps.CoreConfig",
]

# Under ASGI (langflow_site/asgi.py), Django's own middleware here are served by subclasses that
# run their hooks in place on the event loop (core.middleware.for_asgi); the names stay
# Django's, which its deploy checks look for.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "core.middleware.StaticFilesMiddleware",
    "core.middleware.ChunkedBodyMiddleware",
    "users.middleware.SessionEndedMiddleware",  # outside SessionMiddleware: sees its deleted cookie
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.SecurityHeadersMiddleware",
    "core.resilience.DatabaseOutageMiddleware",
    "core.errors.ClientErrorMiddleware",
    "apikeys.request_log.RequestLogMiddleware",
]

ROOT_URLCONF = "langflow_site.urls"
WSGI_APPLICATION = "langflow_site.wsgi.application"
ASGI_APPLICATION = "langflow_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "users.context_processors.default_password_banner",
            ],
        },
    },
]

# Database: SQLite in DATA_DIR by default, anything django-environ understands otherwise.
DATABASES = {"default": env.db("DATABASE_URL", default=default_database_url())}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, with the writers of a process queued on a lock of their own rather than
    # on SQLite's busy handler's sleeps (core/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "core.sqlite"
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at BEGIN so
    # two writers queue on the busy timeout instead of failing with "database is locked".
    # Reads go through a memory map of the file (SQLITE_MMAP_SIZE bytes of it, 0: off) rather
    # than a read() call per page, which a large database's key lookups paid for.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": env.int("SQLITE_TIMEOUT", default=20),
            "transaction_mode": "IMMEDIATE",
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                f" PRAGMA mmap_size={env.int('SQLITE_MMAP_SIZE', default=256 * 1024 * 1024)};"
            ),
        }
    )
    # Tests run on a real file too, so concurrency tests exercise real locking; one file per
    # test process, so two suites can run side by side.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test_db_{os.getpid()}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}

# Under ASGI each request does its sync work on a thread of its own, so a persistent connection
# per thread would mean one connection per request in flight. Instead each worker process keeps
# a pool of at most DB_POOL_SIZE connections (PostgreSQL, psycopg's pool), and the async run
# endpoints do their database work on DB_THREADS threads (core.dbthreads).
DB_POOL_SIZE = env.int("DB_POOL_SIZE", default=8)
if DB_POOL_SIZE < 1:
    raise environ.ImproperlyConfigured("DB_POOL_SIZE must be at least 1")
# PostgreSQL answers over a socket, with the GIL released while it works: one thread per pooled
# connection. SQLite works inside the process and takes one writer at a time, so a second thread
# only adds switching between threads (measured: a run cost a worker a third more CPU with 2 to
# 8 threads than with 1).
_POSTGRESQL = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
DB_THREADS = env.int("DB_THREADS", default=DB_POOL_SIZE if _POSTGRESQL else 1)
if DB_THREADS < 1:
    raise environ.ImproperlyConfigured("DB_THREADS must be at least 1")
if _POSTGRESQL and DB_THREADS > DB_POOL_SIZE:
    raise environ.ImproperlyConfigured("DB_THREADS must be at most DB_POOL_SIZE: each thread holds a connection")
# Seconds a request waits for a free pooled connection before it answers 503.
DB_POOL_TIMEOUT = env.float("DB_POOL_TIMEOUT", default=3.0)
if _POSTGRESQL:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # returned to the pool at the end of each request
    # Checked when taken from the pool (Django hands the pool its own check for this): a
    # connection that died with a database restart is replaced, not handed out.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_SIZE,
        "timeout": DB_POOL_TIMEOUT,
    }
elif DATABASES["default"]["ENGINE"] != "core.sqlite":
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)

# The cache holds the throttles' counters (core.throttling), so every process must share it:
# by default a table of the database (core.cache, created by migrate), else CACHE_URL
# (redis://host:6379/1 in production).
CACHE_URL = env.str("CACHE_URL", default="")
CACHES = {
    "default": env.cache_url_config(CACHE_URL) if CACHE_URL else {
        "BACKEND": "core.cache.DatabaseCache",
        "LOCATION": "langflow_cache",
        # Expired rows are culled first; past this many live ones, a third are dropped.
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    }
}

AUTH_USER_MODEL = "users.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
CSRF_FAILURE_VIEW = "users.views.csrf_failure"
# Sign-in throttle (users.throttling): this many failures from one IP for one username, or
# LOGIN_THROTTLE_IP_FAILURES from one IP for any usernames, lock sign-in for the window (seconds).
LOGIN_THROTTLE_FAILURES = env.int("LOGIN_THROTTLE_FAILURES", default=5)
LOGIN_THROTTLE_IP_FAILURES = env.int("LOGIN_THROTTLE_IP_FAILURES", default=20)
LOGIN_THROTTLE_WINDOW = env.int("LOGIN_THROTTLE_WINDOW", default=15 * 60)
# Every password check goes through the sign-in throttle: the sign-in page and the admin's sign-in here.
AUTHENTICATION_BACKENDS = ["users.backends.ThrottledModelBackend"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    # Users' files (the files app, /api/v2/files): under DATA_DIR, readable by the server's user
    # only. Any Django storage backend can take its place (object storage, with django-storages).
    "files": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {
            "location": str(DATA_DIR / "files"),
            "base_url": None,
            "file_permissions_mode": 0o600,
            "directory_permissions_mode": 0o700,
        },
    },
}
# Users' files: bytes of one upload (413 past it; a file Save File writes too), bytes of all of
# one user's files together, and bytes of a PDF or DOCX the File component parses (its text is
# then bounded by FLOW_MAX_VALUE_BYTES like any value).
FILES_MAX_UPLOAD_BYTES = env.int("FILES_MAX_UPLOAD_BYTES", default=50 * 1024 * 1024)
FILES_MAX_USER_BYTES = env.int("FILES_MAX_USER_BYTES", default=1024 * 1024 * 1024)
FILES_MAX_PARSE_BYTES = env.int("FILES_MAX_PARSE_BYTES", default=20 * 1024 * 1024)
for _name in ("FILES_MAX_UPLOAD_BYTES", "FILES_MAX_USER_BYTES", "FILES_MAX_PARSE_BYTES"):
    if globals()[_name] <= 0:
        raise environ.ImproperlyConfigured(f"{_name} must be above 0")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Superuser bootstrap (users.services.ensure_superuser).
LANGFLOW_SUPERUSER = env.str("LANGFLOW_SUPERUSER", default="langflow")
LANGFLOW_SUPERUSER_PASSWORD = env.str("LANGFLOW_SUPERUSER_PASSWORD", default="langflow")
LANGFLOW_DEFAULT_SUPERUSER_PASSWORD = "langflow"

# API-key peppers: "version:secret" pairs; the highest version hashes new keys, older ones
# still verify the keys made under them (and are upgraded on their next use).
_peppers = env.list("API_KEY_PEPPERS", default=[])
API_KEY_PEPPERS = {}
for _entry in _peppers:
    _version, _, _secret = _entry.partition(":")
    if not _version.isdigit() or not _secret:
        raise environ.ImproperlyConfigured("API_KEY_PEPPERS entries must look like '2:a-long-random-secret'")
    API_KEY_PEPPERS[int(_version)] = _secret
if not API_KEY_PEPPERS:
    API_KEY_PEPPERS = {1: read_secret("api_key_pepper")}


# Users' Credential variables (variables.crypto) are encrypted under these keys: comma-separated
# "version:key" pairs, each key 32 random bytes in base64; the highest version encrypts, older ones
# still decrypt until `manage.py reencryptvariables` moves everything to the newest. Unset: one
# key generated into DATA_DIR. A value whose key version is gone fails closed, naming the variable.
VARIABLE_ENCRYPTION_KEYS = {}
for _entry in env.list("VARIABLE_ENCRYPTION_KEYS", default=[]) or read_secret("variable_encryption_keys").split(","):
    _version, _, _key = _entry.strip().partition(":")
    try:
        _key_bytes = base64.urlsafe_b64decode(_key.replace("+", "-").replace("/", "_") + "=" * (-len(_key) % 4))
    except ValueError:
        _key_bytes = b""
    if not _version.isdigit() or len(_key_bytes) != 32:
        raise environ.ImproperlyConfigured(
            "VARIABLE_ENCRYPTION_KEYS entries must look like '2:<32 random bytes in base64>' "
            "(python -c \"import base64, os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())\")")
    VARIABLE_ENCRYPTION_KEYS[int(_version)] = _key_bytes
# A flow field that loads a global variable the owner does not have may fall back to the server's
# environment variable of that name (Langflow's fallback_to_env_var), only if the operator turns
# this on; the server's own secrets are never handed out this way (variables.resolve).
VARIABLES_FALLBACK_TO_ENV = env.bool("VARIABLES_FALLBACK_TO_ENV", default=False)


def _rate(name: str, default: str) -> str:
    """Read a throttle rate ("20/min"); empty means no limit. Checked at start (apikeys.apps)."""
    return env.str(name, default=default).strip()


# API-key throttles (apikeys.throttling), counted in the cache (CACHE_URL).
API_KEY_FAILED_AUTH_RATE = _rate("API_KEY_FAILED_AUTH_RATE", "20/min")
API_KEY_LEAK_REPORT_RATE = _rate("API_KEY_LEAK_REPORT_RATE", "30/hour")
API_KEY_RATE = _rate("API_KEY_RATE", "")

# API-key audit events and daily-usage rows older than this many days are deleted by
# `manage.py pruneauditlog` (run it daily: see the README).
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=365)
if AUDIT_RETENTION_DAYS < 1:
    raise environ.ImproperlyConfigured("AUDIT_RETENTION_DAYS must be at least 1")

# Each key's request log (apikeys.request_log): written in batches after the answers went out,
# when the oldest waiting row is REQUEST_LOG_FLUSH_SECONDS old or REQUEST_LOG_BATCH rows wait;
# `manage.py pruneauditlog` deletes rows older than REQUEST_LOG_RETENTION_DAYS.
REQUEST_LOG_ENABLED = env.bool("REQUEST_LOG_ENABLED", default=True)
REQUEST_LOG_FLUSH_SECONDS = env.float("REQUEST_LOG_FLUSH_SECONDS", default=5.0)
REQUEST_LOG_BATCH = env.int("REQUEST_LOG_BATCH", default=100)
REQUEST_LOG_RETENTION_DAYS = env.int("REQUEST_LOG_RETENTION_DAYS", default=30)
if REQUEST_LOG_RETENTION_DAYS < 1:
    raise environ.ImproperlyConfigured("REQUEST_LOG_RETENTION_DAYS must be at least 1")

# Client addresses (core.net.client_ip): CLIENT_IP_HEADER is believed only when the
# direct peer is one of TRUSTED_PROXIES (addresses or CIDR networks; "unix": a peer on a Unix socket).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
CLIENT_IP_HEADER = env.str("CLIENT_IP_HEADER", default="X-Forwarded-For")

# Security headers and cookies.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if env.bool("USE_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Load balancers probe /health over plain HTTP: answer them instead of redirecting.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
# Mounts the bare "ceiling" view that `make bench` measures against; never on in production.
BENCH_ENDPOINTS = env.bool("BENCH_ENDPOINTS", default=False)
# Secrets are never flashed through the cookie message storage.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Django's bounds on every request: the bytes of a body read into memory (forms, the key API's
# JSON; 413 past it), the query or form fields (400 past it), the files of one upload (400).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = env.int("DATA_UPLOAD_MAX_NUMBER_FIELDS", default=1000)
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("DATA_UPLOAD_MAX_NUMBER_FILES", default=100)

# Flows (flows.engine). A request body above FLOW_MAX_BODY_BYTES answers 413. Compiled graphs
# are kept in each process, FLOW_GRAPH_CACHE_SIZE flow versions at most.
FLOW_MAX_BODY_BYTES = env.int("FLOW_MAX_BODY_BYTES", default=5 * 1024 * 1024)
FLOW_GRAPH_CACHE_SIZE = env.int("FLOW_GRAPH_CACHE_SIZE", default=256)
# ...and FLOW_GRAPH_CACHE_BYTES of them at most (about the memory they keep alive).
FLOW_GRAPH_CACHE_BYTES = env.int("FLOW_GRAPH_CACHE_BYTES", default=256 * 1024 * 1024)
# What one flow and one run may cost (flows.engine.limits; the README's Security section): nodes
# and edges per flow, flows per import, parameters a run's tweaks and inputs set, bytes of any one
# value the engine builds, bytes of a run's whole output and of its answer, seconds per run.
FLOW_MAX_NODES = env.int("FLOW_MAX_NODES", default=1000)
FLOW_MAX_EDGES = env.int("FLOW_MAX_EDGES", default=5000)
FLOW_MAX_IMPORT_FLOWS = env.int("FLOW_MAX_IMPORT_FLOWS", default=100)
FLOW_MAX_RUN_PARAMETERS = env.int("FLOW_MAX_RUN_PARAMETERS", default=100_000)
FLOW_MAX_VALUE_BYTES = env.int("FLOW_MAX_VALUE_BYTES", default=8 * 1024 * 1024)
FLOW_MAX_ANSWER_BYTES = env.int("FLOW_MAX_ANSWER_BYTES", default=32 * 1024 * 1024)
FLOW_RUN_TIME_BUDGET = env.float("FLOW_RUN_TIME_BUDGET", default=90.0)
# Chat messages kept per flow (flows.memory: Chat Input and Chat Output store them, per session);
# past it the flow's oldest messages are deleted as new ones arrive.
FLOW_MAX_MESSAGES = env.int("FLOW_MAX_MESSAGES", default=10_000)
for _name in ("FLOW_GRAPH_CACHE_BYTES", "FLOW_MAX_NODES", "FLOW_MAX_EDGES", "FLOW_MAX_IMPORT_FLOWS", "FLOW_MAX_RUN_PARAMETERS",
              "FLOW_MAX_VALUE_BYTES", "FLOW_MAX_ANSWER_BYTES", "FLOW_RUN_TIME_BUDGET", "FLOW_MAX_MESSAGES"):
    if globals()[_name] <= 0:
        raise environ.ImproperlyConfigured(f"{_name} must be above 0")
# The OpenAI-compatible chat-completions server that Language Model components call when the
# flow names none; OPENAI_API_KEY is sent to OPENAI_BASE_URL only. OPENAI_TIMEOUT (seconds) is
# the total deadline of one model call (connecting, the headers and every read together);
# OPENAI_MODEL is used when a node names no model.
OPENAI_BASE_URL = env.str("OPENAI_BASE_URL", default="https://api.openai.com/v1")
OPENAI_API_KEY = env.str("OPENAI_API_KEY", default="")
OPENAI_MODEL = env.str("OPENAI_MODEL", default="gpt-4o-mini")
OPENAI_TIMEOUT = env.float("OPENAI_TIMEOUT", default=60.0)
# A model's answer (a whole body, or all the lines of a stream) larger than this fails the call.
MODEL_MAX_RESPONSE_BYTES = env.int("MODEL_MAX_RESPONSE_BYTES", default=4 * 1024 * 1024)
# Open connections to model servers per worker process; calls beyond it wait for a free one.
MODEL_MAX_CONNECTIONS = env.int("MODEL_MAX_CONNECTIONS", default=2000)
# Tests only: no connection kept between model calls (each test request has an event loop of its own).
MODEL_CONNECTION_REUSE = True
# Tests only: run the async endpoints' database work on the calling thread, inside the test's
# transaction, instead of on the DB_THREADS database threads.
DB_WORK_ON_CALLING_THREAD = False
# Any other base URL a flow or a tweak chooses must resolve to public addresses only (no
# loopback, private network or cloud metadata address), unless it is within one of these
# (scheme://host:port/optional-path-prefix), e.g. a local Ollama: http://127.0.0.1:11434/v1.
# A malformed entry stops every process at start (flows.apps.FlowsConfig.ready).
MODEL_ALLOWED_BASE_URLS = env.list("MODEL_ALLOWED_BASE_URLS", default=[])
# Pages that flows fetch (the URL component, web search results, RSS feeds; flows.engine.http).
# A URL a flow chooses must resolve to public addresses only, unless it is within one of
# URL_ALLOWED_PREFIXES (scheme://host:port/optional-path-prefix, like MODEL_ALLOWED_BASE_URLS).
# URL_FETCH_TIMEOUT (seconds) is the whole deadline of one node's fetching (every page, redirect
# and read together); URL_MAX_PAGE_BYTES caps each page (after decompression); URL_MAX_PAGES
# caps the pages one node fetches (its URLs and, with a depth above 1, the links it follows).
URL_ALLOWED_PREFIXES = env.list("URL_ALLOWED_PREFIXES", default=[])
URL_FETCH_TIMEOUT = env.float("URL_FETCH_TIMEOUT", default=30.0)
URL_MAX_PAGE_BYTES = env.int("URL_MAX_PAGE_BYTES", default=2 * 1024 * 1024)
URL_MAX_PAGES = env.int("URL_MAX_PAGES", default=20)
# Web Search: the operator's SearXNG-compatible search endpoint (GET ...?q=...&format=json),
# e.g. http://127.0.0.1:8888/search. Empty: a flow with a Web Search node in Web or News mode
# is refused with 422 naming the node. WEB_SEARCH_TIMEOUT (seconds) is the whole deadline of one
# search (the result pages Web mode reads included); WEB_SEARCH_MAX_RESULTS caps a node's
# max_results; WEB_SEARCH_MAX_RESPONSE_BYTES caps the search answer (and an RSS feed).
WEB_SEARCH_URL = env.str("WEB_SEARCH_URL", default="")
WEB_SEARCH_TIMEOUT = env.float("WEB_SEARCH_TIMEOUT", default=10.0)
WEB_SEARCH_MAX_RESULTS = env.int("WEB_SEARCH_MAX_RESULTS", default=10)
WEB_SEARCH_MAX_RESPONSE_BYTES = env.int("WEB_SEARCH_MAX_RESPONSE_BYTES", default=2 * 1024 * 1024)
for _name in ("URL_FETCH_TIMEOUT", "URL_MAX_PAGE_BYTES", "URL_MAX_PAGES", "WEB_SEARCH_TIMEOUT",
              "WEB_SEARCH_MAX_RESULTS", "WEB_SEARCH_MAX_RESPONSE_BYTES"):
    if globals()[_name] <= 0:
        raise environ.ImproperlyConfigured(f"{_name} must be above 0")
# Items one Loop node iterates over, and rows one Batch Run node sends to its model, per run.
FLOW_MAX_ITERATIONS = env.int("FLOW_MAX_ITERATIONS", default=100)
# The only databases SQL Database nodes may query, by name (a flow's "Database URL" field names
# one; a URL there is refused): name=url pairs, comma-separated, sqlite:////path/file.db (opened
# read-only) or postgres://user:password@host:5432/db (in a read-only transaction). A query reads
# at most SQL_MAX_ROWS rows and ends after SQL_TIMEOUT seconds.
SQL_DATABASES = env.dict("SQL_DATABASES", default={})
SQL_MAX_ROWS = env.int("SQL_MAX_ROWS", default=1000)
SQL_TIMEOUT = env.float("SQL_TIMEOUT", default=10.0)
for _name in ("FLOW_MAX_ITERATIONS", "SQL_MAX_ROWS", "SQL_TIMEOUT"):
    if globals()[_name] <= 0:
        raise environ.ImproperlyConfigured(f"{_name} must be above 0")
# arXiv nodes search this Atom API (arXiv's own; a mirror or, in tests, a stub listed in
# URL_ALLOWED_PREFIXES). It is fetched like any page a flow reads (public addresses only unless
# allowed). ARXIV_TIMEOUT (seconds) is the whole deadline of one search, ARXIV_MAX_RESULTS caps a
# node's max_results, ARXIV_MAX_RESPONSE_BYTES caps the answer.
ARXIV_API_URL = env.str("ARXIV_API_URL", default="https://export.arxiv.org/api/query")
ARXIV_TIMEOUT = env.float("ARXIV_TIMEOUT", default=10.0)
ARXIV_MAX_RESULTS = env.int("ARXIV_MAX_RESULTS", default=50)
ARXIV_MAX_RESPONSE_BYTES = env.int("ARXIV_MAX_RESPONSE_BYTES", default=4 * 1024 * 1024)
for _name in ("ARXIV_TIMEOUT", "ARXIV_MAX_RESULTS", "ARXIV_MAX_RESPONSE_BYTES"):
    if globals()[_name] <= 0:
        raise environ.ImproperlyConfigured(f"{_name} must be above 0")

# Knowledge bases (the knowledge app, the Knowledge component, /api/v1/knowledge_bases): texts are
# embedded through the OpenAI-compatible /embeddings API of EMBEDDING_BASE_URL (empty: OPENAI_BASE_URL)
# with EMBEDDING_API_KEY (empty: OPENAI_API_KEY, sent only when the two base URLs are the same),
# EMBEDDING_MODEL for a base created without one. A base holds at most KNOWLEDGE_MAX_CHUNKS chunks,
# vectors of at most KNOWLEDGE_MAX_DIMENSIONS numbers; a search returns at most KNOWLEDGE_MAX_TOP_K;
# one /embeddings request carries at most KNOWLEDGE_EMBEDDING_BATCH texts.
EMBEDDING_BASE_URL = env.str("EMBEDDING_BASE_URL", default="")
EMBEDDING_API_KEY = env.str("EMBEDDING_API_KEY", default="")
EMBEDDING_MODEL = env.str("EMBEDDING_MODEL", default="text-embedding-3-small")
KNOWLEDGE_MAX_CHUNKS = env.int("KNOWLEDGE_MAX_CHUNKS", default=10_000)
KNOWLEDGE_MAX_DIMENSIONS = env.int("KNOWLEDGE_MAX_DIMENSIONS", default=4096)
KNOWLEDGE_MAX_TOP_K = env.int("KNOWLEDGE_MAX_TOP_K", default=100)
KNOWLEDGE_EMBEDDING_BATCH = env.int("KNOWLEDGE_EMBEDDING_BATCH", default=64)
for _name in ("KNOWLEDGE_MAX_CHUNKS", "KNOWLEDGE_MAX_DIMENSIONS", "KNOWLEDGE_MAX_TOP_K", "KNOWLEDGE_EMBEDDING_BATCH"):
    if globals()[_name] <= 0:
        raise environ.ImproperlyConfigured(f"{_name} must be above 0")

# Background jobs (webhook runs): django-tasks with its database backend, so jobs live in the
# site's own database (SQLite or PostgreSQL) and `manage.py runworker` runs them; `make run`
# starts JOB_WORKERS of them beside gunicorn (0: run them elsewhere, against the same database).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default", "webhooks"]}}
JOB_WORKERS = env.int("JOB_WORKERS", default=1)
# Webhooks (POST /api/v1/webhook/<flow>): whether they need an API key (Langflow's setting; on by
# default), the largest body accepted (413 past it), the attempts a run gets before it is marked
# failed, the first retry's delay in seconds (doubled at each attempt, at most an hour), and the
# seconds a worker's claim on a run lasts without a heartbeat before another worker takes it over.
LANGFLOW_WEBHOOK_AUTH_ENABLE = env.bool("LANGFLOW_WEBHOOK_AUTH_ENABLE", default=True)
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=1024 * 1024)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=5)
WEBHOOK_RETRY_DELAY = env.float("WEBHOOK_RETRY_DELAY", default=10.0)
WEBHOOK_LEASE_SECONDS = env.float("WEBHOOK_LEASE_SECONDS", default=60.0)
for _name in ("WEBHOOK_MAX_BODY_BYTES", "WEBHOOK_MAX_ATTEMPTS", "WEBHOOK_RETRY_DELAY", "WEBHOOK_LEASE_SECONDS"):
    if globals()[_name] <= 0:
        raise environ.ImproperlyConfigured(f"{_name} must be above 0")
if JOB_WORKERS < 0:
    raise environ.ImproperlyConfigured("JOB_WORKERS must be 0 or more")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apikeys.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # A database outage answers 503; everything else goes on to core.api.exception_handler.
    "EXCEPTION_HANDLER": "core.resilience.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": ["apikeys.throttling.ApiKeyRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "core.openapi.ApiAutoSchema",
}

# OpenAPI schema (/api/v1/schema/) and Swagger UI (/api/docs/), served from local static files.
SPECTACULAR_SETTINGS = {
    "TITLE": "langflow_site API",
    "DESCRIPTION": (
        "Langflow-compatible REST API: authenticate with an API key in the `x-api-key` header "
        "or query parameter. API keys are managed with a signed-in session only."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"RevokedByEnum": "apikeys.models.ApiKey.RevokedBy"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_api_keys": {"()": "apikeys.logging.RedactApiKeysFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_api_keys"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own handlers for these would bypass the redaction filter.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # One line per model call would double the access log; failures are logged by flows.engine.model.
        "httpx": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "httpcore": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
