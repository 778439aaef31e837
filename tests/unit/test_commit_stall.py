"""CommitWatch (yujing/streams/commit_stall.py): a head gap between Faust's committed offset
and the lowest acknowledged one that stays put is named once per period; a gap Faust
tolerates, one that moves or closes, or a partition never committed is never named."""

from yujing.streams.commit_stall import CommitWatch, unacknowledged_tails

P6, P7 = ("yujing.readings", 6), ("yujing.readings", 7)


def test_a_gap_that_stays_is_named_with_the_committed_offset_once_per_period():
    w = CommitWatch(30)
    committed, lowest = {P6: 1139, P7: 500}, {P6: 1400, P7: 500}
    assert w.look(committed, lowest, 100) == {}
    assert w.look(committed, lowest, 129.9) == {}
    assert w.look(committed, lowest, 130) == {P6: 1139}       # P7 has no gap: it commits
    assert w.look(committed, lowest, 140) == {}                # once per period
    assert w.look(committed, lowest, 160) == {P6: 1139}


def test_gaps_faust_tolerates_moving_gaps_and_never_committed_partitions_are_left_alone():
    w = CommitWatch(30)
    for t in range(0, 200, 5):
        # one above the committed offset: Faust's _new_offset still commits
        assert w.look({P6: 100}, {P6: 101}, t) == {}
        # never committed (None or 0): Faust commits whatever it has
        assert w.look({P7: None}, {P7: 900}, t) == {}
    w2 = CommitWatch(30)
    for t in range(0, 200, 5):                                # records still coming in order:
        assert w2.look({P6: 100 + t}, {P6: 110 + t}, t) == {}  # the gap moves, commits follow


def test_a_gap_that_closes_starts_the_count_again():
    w = CommitWatch(30)
    assert w.look({P6: 100}, {P6: 200}, 0) == {}
    assert w.look({P6: 100}, {P6: 101}, 20) == {}              # the missing records came
    assert w.look({P6: 150}, {P6: 200}, 25) == {}              # a new gap: counted from 25
    assert w.look({P6: 150}, {P6: 200}, 50) == {}
    assert w.look({P6: 150}, {P6: 200}, 55) == {P6: 150}


def test_on_a_strict_partition_one_missing_record_and_offset_zero_are_gaps():
    w = CommitWatch(30)
    strict = {P6, P7}
    assert w.look({P6: 100, P7: 0}, {P6: 101, P7: 2}, 0, strict) == {}
    assert w.look({P6: 100, P7: 0}, {P6: 101, P7: 2}, 30, strict) == {P6: 100, P7: 0}
    w2 = CommitWatch(30)
    for t in range(0, 200, 5):                 # no gap, or the start not known yet
        assert w2.look({P6: 100, P7: None}, {P6: 100, P7: 5}, t, strict) == {}


def test_records_after_the_commit_that_nobody_acknowledged_are_a_tail_gap():
    starts = {P6: 2, P7: 40, ("yujing.warnings", 0): None, ("yujing.commands", 1): 9}
    ends = {P6: 3, P7: 40, ("yujing.warnings", 0): 5, ("yujing.commands", 1): None}
    # P6: one record at 2 read by nobody; P7 committed to its end; the others not known yet
    assert unacknowledged_tails(starts, ends, acked=()) == {P6: 3}
    # acknowledgements wait for P6: that is the head gap's case, not a tail
    assert unacknowledged_tails(starts, ends, acked={P6: 5}) == {}


def test_a_lost_last_record_is_named_once_it_stays_and_not_while_records_keep_coming():
    w = CommitWatch(30)
    strict = {P6}
    for t, (start, end) in enumerate([(2, 3)] * 7):
        tails = unacknowledged_tails({P6: start}, {P6: end}, ())
        got = w.look({P6: start}, tails, t * 5, strict)
        assert got == ({P6: 2} if t * 5 == 30 else {}), (t, got)
    w2 = CommitWatch(30)            # a busy partition: the commit follows the records
    for t in range(0, 200, 5):
        start, end = 100 + t, 103 + t
        assert w2.look({P6: start}, unacknowledged_tails({P6: start}, {P6: end}, ()), t,
                       strict) == {}
