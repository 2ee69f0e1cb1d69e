from pathlib import Path

import pytest

from timewait.tiers import detect_tier

SITE = Path(__file__).resolve().parent / "site"


def pytest_ignore_collect(collection_path, config):
    """tests/site checks a built site, so it runs only when named (`make test-book`,
    `make test-site`): `pytest tests` collects the same tests whether or not _build exists."""
    if collection_path != SITE:
        return None
    base = config.invocation_params.dir
    named = [(base / arg.split("::")[0]).resolve() for arg in config.args]
    return None if any(p == SITE or SITE in p.parents for p in named) else True


def pytest_configure(config):
    config.addinivalue_line("markers", "live: needs the full tier (private namespaces, nft)")


@pytest.fixture(scope="session")
def full_tier():
    tier = detect_tier()
    if tier.name != "full":
        pytest.skip(f"needs the full tier to run live; this machine is {tier}")
    return tier
