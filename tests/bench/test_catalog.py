"""The development and blind sets share no source: by table, and by what is loaded."""

from __future__ import annotations

from collections import Counter

import pytest

from bench.catalog import NOISES, SOURCES, ids, load_set_library, source_set


def test_every_source_is_in_exactly_one_set():
    counts = Counter(s.id for s in SOURCES)
    assert max(counts.values()) == 1
    assert set(ids("dev")).isdisjoint(ids("blind"))
    assert {s.set for s in SOURCES} == {"dev", "blind"}
    with pytest.raises(KeyError):
        source_set("espeak-ng/xx")


def test_noise_conditions_use_their_own_sets_recordings():
    for set_name, table in NOISES.items():
        assert {source_set(v) for v in table.values()} == {set_name}


def test_loaded_speakers_and_engines_are_disjoint():
    dev = load_set_library("dev", real_packages=False)
    blind = load_set_library("blind", real_packages=False)
    assert dev.speech and blind.speech and dev.backchannels and blind.backchannels
    speakers = {n: {u.speaker for u in lib.speech + lib.backchannels}
                for n, lib in (("dev", dev), ("blind", blind))}
    assert speakers["dev"].isdisjoint(speakers["blind"])
    # Without the downloaded packages every speaker is named after a source of its own set.
    for n, found in speakers.items():
        assert found <= set(ids(n)), found - set(ids(n))
    assert "festival" in {u.source for u in blind.speech}
    assert "festival" not in {u.source for u in dev.speech}
