"""ephemeral-range-sizes: how many connections each small port range allows, run after run."""

import pytest

from timewait.experiments import run

live = pytest.mark.live


@live
@pytest.mark.parametrize("family, address", [(4, "127.0.0.1"), (6, "::1")])
def test_connect_uses_every_port_of_an_even_range_and_all_but_at_most_one_of_an_odd_one(
    full_tier, family, address
):
    """__inet_hash_connect() scans an even number of ports from a random even offset, wrapping
    with ``port -= remaining``: an odd range of n ports offers n - 1 of them to each connect(),
    which n - 1 depending on the offset; for three ports the offset is always 0. IPv6's
    connect() uses the same search."""
    r = run("ephemeral-range-sizes", max_size=12, runs=20, family=family)
    assert r.source_addresses == [address]  # the client's sockets were of this family
    assert r.sizes == list(range(1, 13)) and r.runs == 20
    for size in r.sizes:
        made = r.connections[str(size)]
        assert len(made) == 20
        assert r.errors[str(size)] == ["EADDRNOTAVAIL"]
        if size % 2 == 0 or size == 1:
            assert made == [size] * 20, (size, made)
            assert r.top_port_used[str(size)] == 20
        elif size == 3:
            assert made == [2] * 20
            assert r.top_port_used["3"] == 0
        else:
            assert all(size - 1 <= m <= size for m in made), (size, made)


@pytest.mark.parametrize(
    "bad", [{"max_size": 0}, {"max_size": 33}, {"runs": 0}, {"runs": 51}, {"runs": 2.5}, {"family": 5}]
)
def test_range_sizes_rejects_bad_options(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        run("ephemeral-range-sizes", **bad)
