"""Benchmarks 2, 3 and 4, in one process: what verifying a key costs, as ratios to a baseline.

Run by bench/run.py as ``python -m bench.auth_costs`` with DJANGO_SETTINGS_MODULE=bench.settings
and a temporary DATA_DIR; prints one JSON object. Every comparison is interleaved: rounds
alternate between the two sides (in alternating order), and each ratio is the median of per-round
ratios, so a burst of load from another process hits both sides alike.

2. key-count scaling: ``authenticate_api_key`` on a database of 10 keys vs 1,000,000 keys;
3. invalid vs valid: a wrong secret, an unknown lookup id and a malformed key, per request;
4. ours vs djangorestframework-api-key's ``HasAPIKey``, per request, on the same view.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import sys
import time
import uuid

from bench.databases import selected


def interleaved(sides: dict, *, rounds: int, calls: int) -> dict[str, dict[str, float]]:
    """Time the sides round after round; return each side's median mean and paired ratio.

    ``sides`` maps a name to ``(setup, call)``: ``setup()`` is entered around a round (it may
    select a database) and ``call(i)`` does one operation. The first side is the baseline:
    each side's ratio is the median over rounds of (its mean / the baseline's mean in the same
    round), so load from other processes, which drifts slowly, hits both terms alike.
    Orders rotate between rounds; round 0 only warms caches.
    """
    names = list(sides)
    means = {name: [] for name in names}
    for number in range(rounds + 1):
        order = names[number % len(names) :] + names[: number % len(names)]
        for name in order:
            setup, call = sides[name]
            with setup():
                started = time.perf_counter()
                for i in range(calls):
                    call(i)
                elapsed = time.perf_counter() - started
            if number:
                means[name].append(elapsed / calls)
    baseline = means[names[0]]
    return {
        name: {
            "us": statistics.median(values) * 1e6,
            "ratio": statistics.median(value / base for value, base in zip(values, baseline, strict=True)),
        }
        for name, values in means.items()
    }


def _random_base62(rng: random.Random, length: int) -> str:
    from apikeys import crypto

    return "".join(rng.choices(crypto.ALPHABET, k=length))


def fill_large_database(user, total: int, probes: int, rng: random.Random) -> list[str]:
    """Put ``total`` keys in the "large" database, ``probes`` of them usable; return the probes' raw keys.

    Rows are inserted raw, in batches, copied from a key made the normal way: filler rows get
    random lookup ids and random, well-shaped digests; probe rows get real digests, and are
    spread at random through the table so verifying them touches pages all over it.
    """
    from django.conf import settings
    from django.db import connections, transaction

    from apikeys import crypto
    from apikeys.models import ApiKey
    from apikeys.services import create_api_key, current_pepper_version

    with selected("large"), transaction.atomic(using="large"):
        template_key, _ = create_api_key(user=user, name="template")
    connection = connections["large"]
    pepper = settings.API_KEY_PEPPERS[current_pepper_version()]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiKey._meta.db_table} WHERE id = %s", [template_key.pk.hex])
        columns = [column[0] for column in cursor.description]
        template = dict(zip(columns, cursor.fetchone(), strict=True))  # kept: it is key number ``total``
    probe_positions = set(rng.sample(range(total - 1), probes))
    raw_probes = []
    placeholders = ", ".join(["%s"] * len(columns))
    insert = f"INSERT INTO {ApiKey._meta.db_table} ({', '.join(columns)}) VALUES ({placeholders})"
    batch = []
    for position in range(total - 1):
        lookup_id = _random_base62(rng, crypto.LOOKUP_ID_LENGTH)
        if position in probe_positions:
            raw = crypto.build_key(lookup_id, _random_base62(rng, crypto.SECRET_LENGTH))
            digest = crypto.digest(raw, pepper)
            raw_probes.append(raw)
        else:
            digest = rng.randbytes(32).hex()
        row = {**template, "id": uuid.UUID(int=rng.getrandbits(128)).hex, "lookup_id": lookup_id, "digest": digest}
        batch.append([row[column] for column in columns])
        if len(batch) == 50_000 or position == total - 2:
            with transaction.atomic(using="large"), connection.cursor() as cursor:
                cursor.executemany(insert, batch)
            batch = []
    with selected("large"):
        assert ApiKey.objects.count() == total
    return raw_probes


def benchmark_key_count(users: dict, rng: random.Random, *, large_total: int, rounds: int, calls: int) -> dict:
    from apikeys.services import authenticate_api_key, create_api_key

    small_keys = [create_api_key(user=users["default"], name=f"small-{i}")[1] for i in range(10)]
    started = time.monotonic()
    large_keys = fill_large_database(users["large"], large_total, probes=1000, rng=rng)
    fill_seconds = time.monotonic() - started
    for raw in small_keys + large_keys[:5]:  # every probe must be a working key
        with selected("large" if raw in large_keys else "default"):
            authenticate_api_key(raw)
    means = interleaved(
        {
            "10 keys": (lambda: selected("default"), lambda i: authenticate_api_key(small_keys[i % 10])),
            f"{large_total:,} keys": (
                lambda: selected("large"),
                lambda i: authenticate_api_key(large_keys[i % len(large_keys)]),
            ),
        },
        rounds=rounds,
        calls=calls,
    )
    small, large = means["10 keys"], means[f"{large_total:,} keys"]
    return {
        "small_keys": 10,
        "large_keys": large_total,
        "fill_seconds": round(fill_seconds, 1),
        "small_us": small["us"],
        "large_us": large["us"],
        "ratio": large["ratio"],
    }


def benchmark_refusals(client, valid_keys: list[str], rng: random.Random, *, rounds: int, calls: int) -> dict:
    """Per request through the whole stack (middleware, DRF, exception handler, audit line)."""
    from apikeys import crypto

    def key_with_secret(lookup_id: str) -> str:
        return crypto.build_key(lookup_id, _random_base62(rng, crypto.SECRET_LENGTH))

    wrong_secret = [key_with_secret(crypto.parse_key(raw).lookup_id) for raw in valid_keys]
    unknown_id = [key_with_secret(crypto.new_lookup_id()) for _ in valid_keys]
    malformed = [raw[:-1] + ("A" if raw[-1] != "A" else "B") for raw in valid_keys]  # checksum broken
    cases = {"valid": (valid_keys, 200), "wrong secret": (wrong_secret, 403), "unknown id": (unknown_id, 403),
             "malformed": (malformed, 403)}
    for name, (keys, expected) in cases.items():
        status = client.get("/bench/ours", HTTP_X_API_KEY=keys[0]).status_code
        assert status == expected, (name, status)

    def caller(keys):
        return lambda i: client.get("/bench/ours", HTTP_X_API_KEY=keys[i % len(keys)])

    means = interleaved(
        {name: (contextlib.nullcontext, caller(keys)) for name, (keys, _) in cases.items()}, rounds=rounds, calls=calls
    )
    return means


def benchmark_against_hasapikey(client, user, *, rounds: int, calls: int) -> dict:
    from rest_framework_api_key.models import APIKey

    from apikeys.services import create_api_key

    ours = [create_api_key(user=user, name=f"vs-{i}")[1] for i in range(10)]
    theirs = [APIKey.objects.create_key(name=f"vs-{i}")[1] for i in range(10)]
    assert client.get("/bench/ours", HTTP_X_API_KEY=ours[0]).status_code == 200
    assert client.get("/bench/theirs", HTTP_AUTHORIZATION=f"Api-Key {theirs[0]}").status_code == 200
    assert client.get("/bench/theirs", HTTP_AUTHORIZATION="Api-Key wrong.key").status_code == 403
    means = interleaved(
        {
            "HasAPIKey": (
                contextlib.nullcontext,
                lambda i: client.get("/bench/theirs", HTTP_AUTHORIZATION=f"Api-Key {theirs[i % 10]}"),
            ),
            "ours": (contextlib.nullcontext, lambda i: client.get("/bench/ours", HTTP_X_API_KEY=ours[i % 10])),
        },
        rounds=rounds,
        calls=calls,
    )
    return {
        "ours_us": means["ours"]["us"],
        "theirs_us": means["HasAPIKey"]["us"],
        "ratio": means["ours"]["ratio"],
        "note": "ours also counts the use (one UPDATE); HasAPIKey only reads",
    }


def main() -> None:
    import django

    from langflow_site.datadir import prepare

    prepare()  # DATA_DIR's secrets, as manage.py would make them
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    large_total = int(os.environ.get("BENCH_LARGE_KEYS", "1000000"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "15"))
    calls = int(os.environ.get("BENCH_CALLS", "150"))
    rng = random.Random(6)
    users = {}
    for alias in ("default", "large"):
        call_command("migrate", database=alias, verbosity=0)
        with selected(alias):
            users[alias] = get_user_model().objects.create_user(username="bench", password="bench-password-1")
    user = users["default"]
    results = {"key_count": benchmark_key_count(users, rng, large_total=large_total, rounds=rounds, calls=calls)}
    client = Client()
    from apikeys.services import create_api_key

    valid = [create_api_key(user=user, name=f"refusal-{i}")[1] for i in range(10)]
    results["refusals"] = benchmark_refusals(client, valid, rng, rounds=rounds, calls=calls)
    results["vs_hasapikey"] = benchmark_against_hasapikey(client, user, rounds=rounds, calls=calls)
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
