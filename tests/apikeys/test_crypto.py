import string

from hypothesis import given
from hypothesis import strategies as st

from apikeys import crypto


def test_generated_key_has_prefix_lookup_id_secret_and_checksum():
    lookup_id, raw = crypto.generate_key()
    assert raw.startswith(f"lfsk_{lookup_id}_")
    assert len(raw) == crypto.KEY_LENGTH
    assert crypto.KEY_PATTERN.fullmatch(raw)
    assert crypto.parse_key(raw).lookup_id == lookup_id


def test_key_uses_only_characters_a_double_click_selects():
    _, raw = crypto.generate_key()
    assert set(raw) <= set(string.ascii_letters + string.digits + "_")


def test_secret_has_at_least_160_bits():
    import math

    assert crypto.SECRET_LENGTH * math.log2(len(crypto.ALPHABET)) >= 160


def test_keys_are_unique():
    assert len({crypto.generate_key()[1] for _ in range(500)}) == 500


@given(st.integers(min_value=0, max_value=len("lfsk_") + 12 + 1 + 32 + 6 - 1), st.data())
def test_any_single_character_change_is_refused(position, data):
    _, raw = crypto.generate_key()
    original = raw[position]
    replacement = data.draw(st.sampled_from([c for c in crypto.ALPHABET + "_" if c != original]))
    mutated = raw[:position] + replacement + raw[position + 1 :]
    assert crypto.parse_key(mutated) is None


@given(st.text(max_size=80))
def test_arbitrary_text_never_parses_or_crashes(text):
    assert crypto.parse_key(text) is None


def test_digest_depends_on_pepper_and_never_contains_the_key():
    _, raw = crypto.generate_key()
    first, second = crypto.digest(raw, "pepper-1"), crypto.digest(raw, "pepper-2")
    assert first != second
    assert raw not in first and first != raw
    assert len(first) == 64


def test_mask_shows_only_the_public_part():
    lookup_id, raw = crypto.generate_key()
    masked = crypto.mask(lookup_id)
    assert masked.startswith(f"lfsk_{lookup_id}_")
    assert raw[len(masked.rstrip('*')):] not in masked
