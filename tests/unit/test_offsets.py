"""The strict commit of yujing's own topics (yujing/streams/offsets.py): never past a
missing offset, however small the hole, and nothing while the start is unknown."""

from hypothesis import given
from hypothesis import strategies as st

from yujing.streams.offsets import committable, first_left, read_from, start_of


def test_the_commit_goes_to_the_end_of_the_run_from_the_start():
    assert committable([10, 11, 12, 14], 10) == (3, 13)
    assert committable([5, 6, 10, 11], 10) == (4, 12)       # 5, 6: committed before
    assert committable([10], 10) == (1, 11)


def test_one_missing_record_at_the_head_stops_it():
    # Faust's own rule commits 11..12 over the missing 10 (it waits only for two)
    assert committable([11, 12], 10) == (0, None)
    assert committable([3, 11, 12], 10) == (1, None)         # the stale 3 is dropped


def test_nothing_while_the_start_is_unknown():
    assert committable([0, 1, 2], None) == (0, None)
    assert committable([], 4) == (0, None)


def test_the_start_is_the_higher_of_the_commit_and_where_the_assignment_read_from():
    assert start_of(None, None) is None
    assert start_of(40, None) == 40
    assert start_of(None, 0) == 0                # never committed, read from the beginning
    assert start_of(40, 25) == 40                # committed since the assignment
    assert start_of(40, 90) == 90                # 40..89 expired before they were read


@given(st.sets(st.integers(0, 60), max_size=40), st.integers(0, 60))
def test_the_same_as_walking_the_offsets_one_by_one(offsets, start):
    acked = sorted(offsets)
    nxt = start
    while nxt in offsets:
        nxt += 1
    done = sum(1 for o in acked if o < nxt)
    assert committable(acked, start) == (done, nxt if nxt > start else None)


def test_an_assignment_reads_from_the_commit_or_the_first_record_left():
    assert read_from(40, 0) == (40, range(0))
    assert read_from(None, 7) == (7, range(0))      # never committed: the first record
    assert read_from(0, 7) == (7, range(0))         # 0 is "never" to Faust and Kafka
    assert read_from(40, 90) == (90, range(40, 90))  # 40..89 expired unread: said


def test_the_first_record_left_of_a_fetch() -> None:
    assert first_left([5, 6, 7, 9], [5, 6]) == 7          # a head was handed on
    assert first_left([5, 6, 7, 9], [5, 6, 7, 9]) is None
    assert first_left([5, 6, 7, 9], []) == 5
    assert first_left([5, 6, 7, 9], [5, 7, 9]) == 6       # a hole: out of the set and back
