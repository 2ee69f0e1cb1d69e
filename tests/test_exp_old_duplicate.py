"""old-duplicate: which defence stops a segment of incarnation A from entering incarnation B."""
import pytest

from timewait.experiments import get, run

pytestmark = pytest.mark.live

# (time_wait, timestamps, old_ack, overlap) -> (old bytes B's application reads, rejected_by)
EXPECTED = {
    (True, True, "original", True): (0, "PAWS"),  # TIME_WAIT hands the 4-tuple over
    (True, False, "original", True): (0, "TIME_WAIT"),
    (False, True, "original", True): (0, "PAWS"),
    (False, True, "current", True): (0, "PAWS"),
    (False, False, "original", True): (0, "RFC 5961 ACK check"),
    (False, False, "current", True): (1000, None),
    (False, True, "original", False): (0, "PAWS"),
    (False, False, "original", False): (0, "sequence window"),
    (False, False, "current", False): (0, "sequence window"),
}
KEYS = ("time_wait", "timestamps", "old_ack", "overlap")


def test_every_recorded_variant_has_an_expected_outcome():
    assert {tuple(v[k] for k in KEYS) for v in get("old-duplicate").variants} == set(EXPECTED)


@pytest.fixture(scope="module", params=list(EXPECTED), ids=lambda k: "-".join(map(str, k)))
def result(request, full_tier):
    return run("old-duplicate", **dict(zip(KEYS, request.param)))


def expected(result):
    return EXPECTED[tuple(result.params[k] for k in KEYS)]


def test_the_outcome_and_the_defence_that_stopped_the_old_segment(result):
    old_bytes, defence = expected(result)
    assert result.old_bytes_delivered == old_bytes
    assert result.rejected_by == defence


def test_the_defence_is_named_by_the_counter_that_moved(result):
    moved = result.defence_counters
    if result.rejected_by == "PAWS":
        assert moved["PAWSEstab"] == 1
    elif result.rejected_by == "RFC 5961 ACK check":
        assert moved == {"TCPChallengeACK": 1}
    elif result.rejected_by == "sequence window":
        assert moved.get("DelayedACKLost") == 1 and "PAWSEstab" not in moved
    elif result.rejected_by == "TIME_WAIT":
        assert moved == {"Tcp:OutRsts": 1} and result.reply == "RST"
    else:  # delivered: only B's client complains, about an ACK for bytes it never sent
        assert "PAWSEstab" not in moved and "DelayedACKLost" not in moved


def test_old_bytes_take_the_place_of_bs_own(result):
    """Once A's bytes are in, B's server takes B's own bytes at those numbers for duplicates;
    whenever a defence holds, B's own bytes are read in full."""
    if result.reuse_error:
        assert result.own_bytes_read is None
    elif result.old_bytes_delivered:
        assert result.own_bytes_read == 0
    else:
        assert result.own_bytes_read == 1000


def test_time_wait_blocks_the_4_tuple_only_without_timestamps(result):
    p = result.params
    if not p["time_wait"]:
        assert result.closer_state == "CLOSED"
        assert result.reuse_counters == {"TCPTimeWaitOverflow": 1}
        assert result.b_isn_from.endswith("(clock)")
    elif p["timestamps"]:
        assert result.closer_state == "TIME_WAIT" and result.reuse_error is None
        assert result.reuse_counters.get("TWRecycled") == 1
        assert result.b_isn_from.endswith("(TIME_WAIT reused)")
        assert result.landed == "before B's next expected byte"
    else:
        assert result.reuse_error == "EADDRNOTAVAIL"
        assert result.landed.startswith("no connection")


def test_overlap_puts_the_old_segment_at_bs_next_byte(result):
    p = result.params
    if p["time_wait"]:
        pytest.skip("B's sequence space is chosen by TIME_WAIT reuse, or B does not exist")
    if p["overlap"]:
        assert result.landed == "at B's next expected byte" and result.b_bytes_before > 0
    else:
        assert result.landed == "before B's next expected byte" and result.b_bytes_before == 0


def test_only_the_ack_number_is_ever_rewritten(result):
    changed = ["ack"] if result.params["old_ack"] == "current" and result.reuse_error is None else []
    assert result.changed_fields == changed
    late = [s for s in result.trace if s.note == "delivered late"]
    held = [s for s in result.trace if s.note == "held"]
    assert len(late) == len(held) == 1
    assert (late[0].seq_abs, late[0].length) == (held[0].seq_abs, held[0].length)


def test_summary_is_deterministic(result):
    text = result.summary()
    assert str(result.isn_advance) not in text and "b_bytes_before" not in text


@pytest.mark.parametrize("bad", [{"time_wait": 1}, {"timestamps": "yes"}, {"old_ack": "new"},
                                 {"overlap": None}, {"held": True}])
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError):
        run("old-duplicate", **bad)
