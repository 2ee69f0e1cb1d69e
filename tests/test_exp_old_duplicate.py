"""old-duplicate: which defence stops a segment of incarnation A from entering incarnation B,
over IPv4 and (for one variant of each defence) over IPv6."""

import pytest

from timewait.experiments import get, run

pytestmark = pytest.mark.live

# (time_wait, timestamps, old_ack, overlap, reply_overlap)
#     -> (old bytes B's application reads, rejected_by)
EXPECTED = {
    (False, False, "original", True, True): (1000, None),  # both directions line up
    (False, True, "original", True, True): (0, "PAWS"),
    (True, True, "original", True, False): (0, "PAWS"),  # TIME_WAIT hands the 4-tuple over
    (True, False, "original", True, False): (0, "TIME_WAIT"),
    (False, True, "original", True, False): (0, "PAWS"),
    (False, True, "current", True, False): (0, "PAWS"),
    (False, False, "original", True, False): (0, "RFC 5961 ACK check"),
    (False, False, "current", True, False): (1000, None),
    (False, True, "original", False, False): (0, "PAWS"),
    (False, False, "original", False, False): (0, "sequence window"),
    (False, False, "current", False, False): (0, "sequence window"),
}
KEYS = ("time_wait", "timestamps", "old_ack", "overlap", "reply_overlap")
# Run over IPv6 too: one variant of each outcome.
IPV6_KEYS = [
    (False, False, "original", True, True),  # delivered
    (False, True, "original", True, True),  # PAWS
    (True, True, "original", True, False),  # TIME_WAIT hands the 4-tuple over, then PAWS
    (True, False, "original", True, False),  # TIME_WAIT
    (False, False, "original", True, False),  # RFC 5961 ACK check
    (False, False, "original", False, False),  # sequence window
]
ADDRESS = {4: "127.0.0.1", 6: "::1"}


def test_every_recorded_variant_has_an_expected_outcome():
    exp = get("old-duplicate")
    assert {tuple(exp.check(v)[k] for k in KEYS) for v in exp.variants} == set(EXPECTED)
    assert set(IPV6_KEYS) <= set(EXPECTED)


def variant_id(key) -> str:
    return "-".join(map(str, key))


def run_id(key_family) -> str:
    key, family = key_family
    return f"{variant_id(key)}-ipv{family}"


@pytest.fixture(scope="module")
def runs(full_tier):
    """``runs(key, family)``: the run of one variant, made once for the whole module."""
    done = {}

    def get_run(key, family=4):
        if (key, family) not in done:
            done[key, family] = run("old-duplicate", family=family, **dict(zip(KEYS, key, strict=True)))
        return done[key, family]

    return get_run


@pytest.fixture(scope="module", params=[(k, 4) for k in EXPECTED] + [(k, 6) for k in IPV6_KEYS], ids=run_id)
def result(request, runs):
    return runs(*request.param)


def test_the_run_stays_on_its_family(result):
    address = ADDRESS[result.params["family"]]
    assert {s.saddr for s in result.trace} | {s.daddr for s in result.trace} == {address}
    # the held segment and its late copy are in the trace of that family
    notes = [s.note for s in result.trace]
    assert notes.count("held") == 1 and notes.count("delivered late") == 1


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


# Without TIME_WAIT, B's sequence space is the ISN clock's (with it, TIME_WAIT reuse chooses
# it, or B does not exist).
CLOCK_ISN_KEYS = [k for k in EXPECTED if not k[0]]
# Neither TIME_WAIT nor PAWS acts first, and the old segment lies at B's next byte.
ACK_CHECK_KEYS = [k for k in EXPECTED if not k[0] and not k[1] and k[3]]


@pytest.mark.parametrize("key", CLOCK_ISN_KEYS, ids=variant_id)
def test_overlap_puts_the_old_segment_at_bs_next_byte(runs, key):
    result = runs(key)
    if result.params["overlap"]:
        assert result.landed == "at B's next expected byte" and result.b_bytes_before > 0
    else:
        assert result.landed == "before B's next expected byte" and result.b_bytes_before == 0


def test_only_the_ack_number_is_ever_rewritten(result):
    p = result.params
    rewritten = p["old_ack"] == "current" and result.reuse_error is None
    assert result.changed_fields == (["ack"] if rewritten else [])
    late = [s for s in result.trace if s.note == "delivered late"]
    held = [s for s in result.trace if s.note == "held"]
    assert len(late) == len(held) == 1
    assert (late[0].seq_abs, late[0].length) == (held[0].seq_abs, held[0].length)
    if not rewritten:
        assert late[0].ack_abs == held[0].ack_abs


@pytest.mark.parametrize("key", ACK_CHECK_KEYS, ids=variant_id)
def test_the_ack_check_drops_an_old_ack_number_unless_the_reply_direction_lines_up(runs, key):
    result = runs(key)
    p = result.params
    if p["reply_overlap"] or p["old_ack"] == "current":
        assert result.ack_landed == "at B's server's snd_una: everything it sent, nothing more"
        assert result.rejected_by is None
    else:
        assert result.ack_landed.startswith("behind B's server's snd_una by more than")
        assert result.rejected_by == "RFC 5961 ACK check"


def test_with_both_directions_past_the_isn_clock_b_reads_a_bytes_without_any_rewrite(full_tier):
    r = run(
        "old-duplicate",
        time_wait=False,
        timestamps=False,
        old_ack="original",
        overlap=True,
        reply_overlap=True,
    )
    assert r.changed_fields == []
    assert r.old_bytes_delivered == 1000 and r.own_bytes_read == 0 and r.rejected_by is None
    assert r.landed == "at B's next expected byte"
    assert r.ack_landed == "at B's server's snd_una: everything it sent, nothing more"
    # A's server outran the clock as A's client did, and B's server sent up to A's ACK.
    assert 0 < r.server_isn_advance < 32 << 20 and r.reply_bytes_before > 0
    # No defence at B's server moved; the challenge ACK is B's client's, answering an ACK
    # for 1000 bytes it never sent (and a second one rate-limited).
    assert r.defence_counters == {"TCPChallengeACK": 1, "TCPACKSkippedChallenge": 1}
    late = next(i for i, s in enumerate(r.trace) if s.note == "delivered late")
    answer = r.trace[late + 1]
    assert answer.src == "server" and answer.ack_abs == (r.trace[late].seq_abs + 1000) % 2**32


def test_the_rewrite_to_the_ack_number_already_there_changes_nothing(full_tier):
    r = run(
        "old-duplicate",
        time_wait=False,
        timestamps=False,
        old_ack="current",
        overlap=True,
        reply_overlap=True,
    )
    assert r.changed_fields == [] and r.old_bytes_delivered == 1000


def test_summary_is_deterministic(result):
    text = result.summary()
    assert str(result.isn_advance) not in text and "b_bytes_before" not in text
    assert "reply_bytes_before" not in text and "server_isn_advance" not in text


@pytest.mark.parametrize(
    "bad",
    [
        {"time_wait": 1},
        {"timestamps": "yes"},
        {"old_ack": "new"},
        {"overlap": None},
        {"reply_overlap": "yes"},
        {"held": True},
        {"family": 5},
    ],
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(ValueError, match=f"^{next(iter(bad))}: "):
        run("old-duplicate", **bad)


def test_a_bad_value_names_the_valid_ones():
    with pytest.raises(ValueError, match="reply_overlap: must be True or False, got 1"):
        run("old-duplicate", reply_overlap=1)
