import pytest

from timewait.tiers import detect_tier


def pytest_configure(config):
    config.addinivalue_line("markers", "live: needs the full tier (private namespaces, nft)")


@pytest.fixture(scope="session")
def full_tier():
    tier = detect_tier()
    if tier.name != "full":
        pytest.skip(f"needs the full tier to run live; this machine is {tier}")
    return tier
