import datetime
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from apikeys import crypto, queries, services
from apikeys.models import ApiKey
from apikeys.services import InvalidApiKey, authenticate_api_key, create_api_key, revoke_api_key
from core.compiled import CompiledSelect, FetchedRow

pytestmark = pytest.mark.django_db


def test_create_returns_the_raw_key_once_and_stores_only_a_digest(user):
    api_key, raw = create_api_key(user=user, name="ci")
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert stored.digest != raw and raw not in stored.digest
    for field in ApiKey._meta.concrete_fields:
        assert raw not in str(getattr(stored, field.attname))
    assert not hasattr(stored, "raw_key")


def test_database_dump_contains_no_raw_key(user, other_user):
    raws = [create_api_key(user=u, name=f"k{i}")[1] for i, u in enumerate([user, other_user, user])]
    out = StringIO()
    call_command("dumpdata", stdout=out)
    dump = out.getvalue()
    assert json.loads(dump)
    for raw in raws:
        assert raw not in dump
        secret = raw.split("_", 2)[2]
        assert secret not in dump


def test_authenticate_returns_the_key_and_counts_the_use(user):
    api_key, raw = create_api_key(user=user)
    found = authenticate_api_key(raw)
    assert found.pk == api_key.pk and found.user == user
    api_key.refresh_from_db()
    assert api_key.total_uses == 1 and api_key.last_used_at is not None


def test_revoked_key_is_refused_on_the_next_request(user):
    api_key, raw = create_api_key(user=user)
    authenticate_api_key(raw)
    assert revoke_api_key(api_key) is True
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(raw)
    assert revoke_api_key(api_key) is False


def test_expired_key_is_refused(user):
    _, raw = create_api_key(user=user, expires_at=timezone.now() - datetime.timedelta(seconds=1))
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(raw)


def test_key_of_inactive_owner_is_refused(user):
    _, raw = create_api_key(user=user)
    user.is_active = False
    user.save()
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(raw)


def test_malformed_key_is_refused_without_a_query(user, django_assert_num_queries):
    _, raw = create_api_key(user=user)
    with django_assert_num_queries(0):
        with pytest.raises(InvalidApiKey):
            authenticate_api_key(raw[:-1] + ("A" if raw[-1] != "A" else "B"))


class _WorkCounter:
    """Count the expensive steps of a verification, to prove both failure paths do the same work:
    hashing, comparisons, the rows the one query returns, and the columns read from them."""

    def __init__(self, monkeypatch):
        self.digests = 0
        self.comparisons = 0
        self.rows = 0
        self.columns = []
        real_digest, real_match = crypto.digest, crypto.digests_match
        real_fetch, real_value = CompiledSelect.fetch, FetchedRow.value

        def fetch(compiled, *args, **kwargs):
            rows = real_fetch(compiled, *args, **kwargs)
            self.rows += len(rows)
            return rows

        def value(row, attname, *args):
            self.columns.append(attname)
            return real_value(row, attname, *args)

        monkeypatch.setattr(CompiledSelect, "fetch", fetch)
        monkeypatch.setattr(FetchedRow, "value", value)

        def digest(*args):
            self.digests += 1
            return real_digest(*args)

        def match(*args):
            self.comparisons += 1
            return real_match(*args)

        monkeypatch.setattr(crypto, "digest", digest)
        monkeypatch.setattr(crypto, "digests_match", match)


def test_unknown_lookup_id_and_wrong_secret_do_the_same_work(user, monkeypatch, django_assert_num_queries):
    api_key, _ = create_api_key(user=user)
    rotated, _ = create_api_key(user=user)
    services.rotate_api_key(rotated, grace=datetime.timedelta(days=1))
    wrong_secret = crypto.build_key(api_key.lookup_id, "x" * crypto.SECRET_LENGTH)
    wrong_secret_in_grace_period = crypto.build_key(rotated.lookup_id, "x" * crypto.SECRET_LENGTH)
    unknown_id = crypto.build_key("Z" * crypto.LOOKUP_ID_LENGTH, "x" * crypto.SECRET_LENGTH)
    counts = []
    for raw in (wrong_secret, wrong_secret_in_grace_period, unknown_id):
        counter = _WorkCounter(monkeypatch)
        with django_assert_num_queries(1):
            with pytest.raises(InvalidApiKey):
                authenticate_api_key(raw)
        counts.append((counter.digests, counter.comparisons, counter.rows, sorted(counter.columns)))
    # Current secret and previous (grace period) secret: two HMACs, two comparisons, always;
    # one key row read (another key's for the unknown id: one of these two), and the columns a
    # known key with that row would have had read.
    assert [count[:3] for count in counts] == [(2, 2, 1)] * 3
    assert counts[2][3] in (counts[0][3], counts[1][3]) and "digest" in counts[2][3]


def test_an_unknown_lookup_id_reads_a_decoy_row_yet_never_authenticates_or_names_it(user):
    decoy, decoy_raw = create_api_key(user=user)
    decoy_secret = decoy_raw[len(crypto.PREFIX) + crypto.LOOKUP_ID_LENGTH + 1:-crypto.CHECKSUM_LENGTH]
    unknown = crypto.build_key("Z" * crypto.LOOKUP_ID_LENGTH, decoy_secret)  # the decoy's own secret, even
    row, known = queries.find_key_or_decoy("Z" * crypto.LOOKUP_ID_LENGTH)
    assert row is not None and known is False and row.value("id") == decoy.pk
    with pytest.raises(InvalidApiKey) as refused:
        authenticate_api_key(unknown)
    assert refused.value.reason == "unknown_key" and refused.value.api_key_id is None
    assert services.report_leaked_key(unknown) is False
    assert ApiKey.objects.get(pk=decoy.pk).is_usable and authenticate_api_key(decoy_raw).pk == decoy.pk


def test_with_no_key_at_all_an_unknown_lookup_id_still_costs_one_query(django_assert_num_queries):
    assert queries.find_key_or_decoy("Z" * crypto.LOOKUP_ID_LENGTH) == (None, False)
    with django_assert_num_queries(1), pytest.raises(InvalidApiKey):
        authenticate_api_key(crypto.build_key("Z" * crypto.LOOKUP_ID_LENGTH, "x" * crypto.SECRET_LENGTH))


def test_old_pepper_still_verifies_and_key_is_rehashed_under_the_new_one(user, settings):
    settings.API_KEY_PEPPERS = {1: "old-pepper"}
    api_key, raw = create_api_key(user=user)
    assert api_key.pepper_version == 1
    settings.API_KEY_PEPPERS = {1: "old-pepper", 2: "new-pepper"}
    authenticate_api_key(raw)
    api_key.refresh_from_db()
    assert api_key.pepper_version == 2
    assert api_key.digest == crypto.digest(raw, "new-pepper")
    settings.API_KEY_PEPPERS = {2: "new-pepper"}
    assert authenticate_api_key(raw).pk == api_key.pk


def test_key_whose_pepper_was_removed_is_refused(user, settings):
    settings.API_KEY_PEPPERS = {1: "old-pepper"}
    _, raw = create_api_key(user=user)
    settings.API_KEY_PEPPERS = {2: "new-pepper"}
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(raw)


def test_key_revoked_between_lookup_and_count_is_refused(user, before_counting_a_use):
    api_key, raw = create_api_key(user=user)
    before_counting_a_use(lambda key: ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now()))
    with pytest.raises(InvalidApiKey):
        authenticate_api_key(raw)
    api_key.refresh_from_db()
    assert api_key.total_uses == 0


def test_a_wrong_secret_never_builds_the_key_or_its_owner(user, monkeypatch):
    from apikeys import queries

    api_key, raw = create_api_key(user=user)
    built = []
    real = queries.key_with_owner
    monkeypatch.setattr(queries, "key_with_owner", lambda row: built.append(row) or real(row))
    with pytest.raises(InvalidApiKey) as refused:
        authenticate_api_key(crypto.build_key(api_key.lookup_id, "w" * crypto.SECRET_LENGTH))
    assert built == [] and refused.value.api_key_id == api_key.pk
    authenticate_api_key(raw)
    assert len(built) == 1
