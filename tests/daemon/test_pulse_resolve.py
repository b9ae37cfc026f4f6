"""Device specs resolved against a sound server's sources (the pulse backend), and the choice
of backend when no server answers."""

from __future__ import annotations

import dataclasses

import pytest

from daemon.config import CaptureSettings
from daemon.device_choice import DeviceError
from daemon.pulse_capture import choose_backend
from daemon.pulse_streams import PlayingApp, ServerView, Source, find_app, resolve_source

VIEW = ServerView(
    default_sink="headset_speaker",
    default_source="headset_mic",
    sources=(
        Source("headset_speaker.monitor", 0, "Monitor of Headset_Speaker", 48000, True),
        Source("mic_feed.monitor", 1, "Monitor of Mic_Feed", 48000, True),
        Source("headset_mic", 2, "Headset_Mic", 48000, False),
        Source("alsa_input.usb-Jabra_Evolve2_40-00.mono-fallback", 3, "Jabra Evolve2 40 Mono",
               16000, False),
    ),
)


def test_far_end_default_is_the_default_sinks_monitor():
    c = resolve_source(VIEW, "", "far end", "far_end_device")
    assert (c.name, c.pulse_source, c.label) == ("headset_speaker.monitor",) * 2 + (
        "pulse:headset_speaker.monitor",)


def test_default_follows_the_servers_default_source():
    for spec in ("default", ""):
        c = resolve_source(VIEW, spec, "mic", "mic_device")
        assert c.spec == "default" and c.name == "headset_mic" and c.pulse_source is None


def test_alsa_style_names_find_their_source_whatever_the_separators():
    assert resolve_source(VIEW, "speaker_monitor", "far end", "k").name \
        == "headset_speaker.monitor"
    assert resolve_source(VIEW, "headset_mic", "mic", "k").label == "headset_mic"
    assert resolve_source(VIEW, "jabra evolve2", "mic", "k").name.startswith("alsa_input.usb-J")


def test_a_brand_name_means_the_mic_for_the_mic_and_the_monitor_for_the_far_end():
    """A USB headset's speaker monitor carries the same brand as its mic."""
    view = dataclasses.replace(VIEW, sources=(*VIEW.sources, Source(
        "alsa_output.usb-Jabra_Evolve2_40-00.analog-stereo.monitor", 4,
        "Monitor of Jabra Evolve2 40 Stereo", 48000, True)))
    assert resolve_source(view, "Jabra", "mic", "k").name.startswith("alsa_input.usb-J")
    assert resolve_source(view, "jabra", "far end", "k").name.startswith("alsa_output.usb-J")
    with pytest.raises(DeviceError, match="several sources match"):  # two mics named headset
        resolve_source(dataclasses.replace(view, sources=(*view.sources, Source(
            "headset_mic_2", 5, "Headset_Mic 2", 48000, False))), "headset", "mic", "k")


def test_pulse_prefix_names_one_source_exactly():
    c = resolve_source(VIEW, "pulse:mic_feed.monitor", "mic", "mic_device")
    assert c.pulse_source == "mic_feed.monitor" and c.label == "pulse:mic_feed.monitor"
    with pytest.raises(DeviceError, match=r'\[capture\] mic_device = "pulse:nope": no '
                                          r"PulseAudio source 'nope'; sources: "):
        resolve_source(VIEW, "pulse:nope", "mic", "mic_device")


def test_unknown_ambiguous_and_indexed_specs_say_what_to_do():
    with pytest.raises(DeviceError, match='no mic source matches; sources: "headset_speaker'):
        resolve_source(VIEW, "plantronics", "mic", "mic_device")
    with pytest.raises(DeviceError, match="several sources match"):
        resolve_source(VIEW, "monitor", "far end", "far_end_device")
    with pytest.raises(DeviceError, match=r'indices are PortAudio.s.*backend = "portaudio"'):
        resolve_source(VIEW, 3, "mic", "mic_device")


def test_a_server_without_default_sink_cannot_give_the_far_end():
    view = dataclasses.replace(VIEW, default_sink="")
    with pytest.raises(DeviceError, match="no default sink"):
        resolve_source(view, "", "far end", "far_end_device")


def test_find_app_by_name_or_binary_newest_first():
    view = dataclasses.replace(VIEW, apps=(
        PlayingApp(4, "headset_speaker", "Baresip", "baresip", "VoIP Playback"),
        PlayingApp(9, "headset_speaker", "Baresip", "baresip", "VoIP Playback"),
        PlayingApp(5, "headset_speaker", "paplay", "paplay", "ding.wav")))
    assert find_app(view, "baresip").index == 9
    assert find_app(view, "BARESIP").index == 9
    assert find_app(view, "paplay").index == 5
    assert find_app(view, "zoiper") is None


def test_backend_choice_without_a_sound_server(monkeypatch, tmp_path):
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/no-server")
    assert choose_backend(CaptureSettings())[0] == "portaudio"
    assert choose_backend(CaptureSettings(backend="portaudio")) == ("portaudio", "configured")
    with pytest.raises(DeviceError, match=r'backend = "pulse": no sound server answers.*'
                                          r'set backend = "portaudio"'):
        choose_backend(CaptureSettings(backend="pulse"))


def test_far_end_app_needs_a_sound_server_and_the_pulse_backend(monkeypatch, tmp_path):
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/no-server")
    with pytest.raises(DeviceError, match=r'far_end_app = "baresip" needs backend = "pulse"'):
        choose_backend(CaptureSettings(backend="portaudio", far_end_app="baresip"))
    with pytest.raises(DeviceError, match=r'\[capture\] far_end_app = "baresip": no sound '
                                          r'server answers.*without far_end_app'):
        choose_backend(CaptureSettings(far_end_app="baresip"))


def test_app_choice_label_says_what_the_far_end_records():
    from daemon.pulse_capture import AppChoice

    c = AppChoice("app:baresip", 7, "headset_speaker.monitor",
                  pulse_source="headset_speaker.monitor", note="baresip only")
    assert c.label == "pulse:headset_speaker.monitor (baresip only)"
    assert c.name == "headset_speaker.monitor"  # what is recorded, and the hearing model's key
