import pytest

from apikeys import services


@pytest.fixture
def before_counting_a_use(monkeypatch):
    """Run ``action(api_key)`` once between a key's lookup and the UPDATE that counts its use.

    That is where another worker's revocation or rotation can land: the race to test.
    """

    def install(action):
        real_record_use = services._record_use

        def racing(key, raw_key, matched):
            monkeypatch.setattr(services, "_record_use", real_record_use)
            action(key)
            return real_record_use(key, raw_key, matched)

        monkeypatch.setattr(services, "_record_use", racing)

    return install
