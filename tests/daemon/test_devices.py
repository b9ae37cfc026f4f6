"""Device listing and the config's device specs (daemon.devices) against a scripted PortAudio
device list and scripted ``pactl`` answers: no sound server needed. The real servers are in
tests/integration (test_capture, test_pulse_backend)."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from daemon import devices
from daemon.device_choice import (
    DeviceChoice,
    DeviceError,
    DeviceNotListed,
    NoInputDevices,
    by_name,
)
from daemon.devices import InputDevice, list_input_devices, resolve, stream_sources


def fake_sd(default_in: int = 1) -> SimpleNamespace:
    """PortAudio as sounddevice shows it on a desktop with a headset and a sound server."""
    listed = [
        ("HDA Intel PCH: ALC3246 Analog (hw:0,0)", 0, 2, 48000.0),   # output only
        ("headset_mic", 2, 0, 16000.0),
        ("speaker_monitor", 1, 0, 48000.0),
        ("pulse", 32, 0, 44100.0),
        ("default", 32, 0, 44100.0),
        ("Jabra Evolve2 40 Mono", 1, 1, 16000.0),
    ]
    query = [{"index": i, "name": name, "max_input_channels": ch, "hostapi": api,
              "default_samplerate": rate}
             for i, (name, ch, api, rate) in enumerate(listed)]
    return SimpleNamespace(
        query_hostapis=lambda: [{"name": "ALSA"}, {"name": "JACK"}],
        query_devices=lambda: query,
        default=SimpleNamespace(device=(default_in, 3)),
    )


@pytest.fixture
def no_pactl(monkeypatch):
    """No pactl (or no server answering it)."""
    monkeypatch.setattr(devices, "pactl", lambda *args: None)


def scripted_pactl(monkeypatch, answers: dict[tuple[str, ...], str]) -> None:
    monkeypatch.setattr(devices, "pactl", lambda *args: answers.get(args))


SHORT_SOURCES = ("0\tbluez_input.headset\tmodule-bluez5-device.c\ts16le 1ch 16000Hz\tRUNNING\n"
                 "1\talsa_output.pci.analog-stereo.monitor\tmodule-alsa-card.c\ts16le 2ch\tIDLE\n")


def test_only_devices_with_inputs_are_listed_with_monitor_and_default_marked(no_pactl):
    listed = list_input_devices(fake_sd(default_in=1))
    assert [d.index for d in listed] == [1, 2, 3, 4, 5]
    by_name = {d.name: d for d in listed}
    assert by_name["speaker_monitor"].monitor and not by_name["headset_mic"].monitor
    assert by_name["headset_mic"] == InputDevice(1, "headset_mic", "ALSA", 2, 16000,
                                                 monitor=False, default=True)
    assert by_name["Jabra Evolve2 40 Mono"].hostapi == "JACK"
    assert sum(d.default for d in listed) == 1


def test_a_pulse_monitor_source_is_a_monitor_even_without_the_word_in_its_pcm_name(
        monkeypatch):
    sd = fake_sd()
    query = sd.query_devices()
    query.append({"index": 6, "name": "alsa_output.pci.analog-stereo.monitor",
                  "max_input_channels": 2, "hostapi": 0, "default_samplerate": 48000.0})
    sd.query_devices = lambda: query
    scripted_pactl(monkeypatch, {("list", "short", "sources"): SHORT_SOURCES})
    assert devices.pulse_sources() == ["bluez_input.headset",
                                       "alsa_output.pci.analog-stereo.monitor"]
    [last] = [d for d in list_input_devices(sd) if d.index == 6]
    assert last.monitor


def test_no_default_device_marks_none(no_pactl):
    sd = fake_sd()
    sd.default = SimpleNamespace(device=None)
    assert not any(d.default for d in list_input_devices(sd))


@pytest.mark.parametrize(("spec", "index"), [
    (2, 2), ("2", 2), (" 5 ", 5),                       # an index, as a number or text
    ("headset_mic", 1), ("HEADSET", 1),                # a name, or part of it in any case
    ("jabra", 5), ("default", 1),                      # "default": PortAudio's default input
])
def test_a_spec_resolves_to_one_device(no_pactl, spec, index):
    choice = resolve(fake_sd(), spec, "mic", "mic_device")
    assert choice.index == index and choice.pulse_source is None


def test_an_exact_name_wins_over_names_that_contain_it(no_pactl):
    sd = fake_sd()
    query = sd.query_devices()
    query.append({"index": 6, "name": "headset_mic (2)", "max_input_channels": 1,
                  "hostapi": 0, "default_samplerate": 16000.0})
    sd.query_devices = lambda: query
    assert resolve(sd, "headset_mic", "mic", "mic_device").index == 1
    with pytest.raises(DeviceError, match="several devices match"):
        resolve(sd, "headset", "mic", "mic_device")


def test_an_empty_mic_spec_is_the_default_device(no_pactl):
    assert resolve(fake_sd(), "", "mic", "mic_device") == DeviceChoice("default", 1,
                                                                       "headset_mic")


def test_several_matches_name_them_and_ask_for_more(no_pactl):
    with pytest.raises(DeviceError, match=r"several devices match \(headset_mic, "
                                          r"speaker_monitor\)") as info:
        resolve(fake_sd(), "_", "mic", "mic_device")
    assert not isinstance(info.value, DeviceNotListed)  # re-reading the list will not help


@pytest.mark.parametrize(("spec", "message"), [
    ("usb", r'\[capture\] mic_device = "usb": no mic device matches; input devices: '
            r'1 "headset_mic", 2 "speaker_monitor"'),
    (9, r"\[capture\] mic_device = 9: no input device with index 9"),
])
def test_nothing_matching_is_not_listed_with_the_candidates(no_pactl, spec, message):
    with pytest.raises(DeviceNotListed, match=message):
        resolve(fake_sd(), spec, "mic", "mic_device")


@pytest.mark.parametrize("spec", ["default", "headset", 3, "pulse:headset_mic", ""])
def test_no_devices_at_all_says_so_whatever_the_spec(no_pactl, spec):
    """The machine's problem, not the spec's: every spec gets the same answer (and commands
    exit 3, could not run, on it)."""
    sd = fake_sd()
    sd.query_devices = lambda: []
    role, key = ("far end", "far_end_device") if spec == "" else ("mic", "mic_device")
    with pytest.raises(NoInputDevices, match=r"no input devices at all \(is the sound server "
                                             r"running\?\)"):
        resolve(sd, spec, role, key)


def test_the_far_end_defaults_to_the_default_sinks_monitor_through_the_pulse_pcm(monkeypatch):
    scripted_pactl(monkeypatch, {("get-default-sink",): "alsa_output.pci.analog-stereo\n"})
    choice = resolve(fake_sd(), "", "far end", "far_end_device")
    assert choice == DeviceChoice("", 3, "pulse",
                                  pulse_source="alsa_output.pci.analog-stereo.monitor")
    assert choice.label == "pulse:alsa_output.pci.analog-stereo.monitor"


def test_without_a_sound_server_the_far_end_defaults_to_a_monitor_pcm(no_pactl):
    assert resolve(fake_sd(), "", "far end", "far_end_device") == DeviceChoice(
        "", 2, "speaker_monitor")
    sd = fake_sd()
    sd.query_devices = lambda: [d for d in fake_sd().query_devices() if d["index"] != 2]
    with pytest.raises(DeviceNotListed, match="no monitor source found"):
        resolve(sd, "", "far end", "far_end_device")


def test_a_pulse_spec_opens_the_pulse_pcm_with_that_source(monkeypatch):
    scripted_pactl(monkeypatch, {("list", "short", "sources"): SHORT_SOURCES})
    choice = resolve(fake_sd(), "pulse:bluez_input.headset", "mic", "mic_device")
    assert choice == DeviceChoice("pulse:bluez_input.headset", 3, "pulse",
                                  pulse_source="bluez_input.headset")
    with pytest.raises(DeviceError, match=r"no PulseAudio source 'nope'; sources: "
                                          r"bluez_input.headset, alsa_output"):
        resolve(fake_sd(), "pulse:nope", "mic", "mic_device")


def test_a_pulse_spec_without_pactl_is_trusted_and_falls_back_to_the_default_pcm(no_pactl):
    sd = fake_sd()
    sd.query_devices = lambda: [d for d in fake_sd().query_devices() if d["name"] != "pulse"]
    assert resolve(sd, "pulse:x", "mic", "mic_device") == DeviceChoice("pulse:x", 4, "default",
                                                                       pulse_source="x")
    sd.query_devices = lambda: [d for d in fake_sd().query_devices()
                                if d["name"] not in ("pulse", "default")]
    with pytest.raises(DeviceNotListed, match=r'no "pulse" or "default" PCM'):
        resolve(sd, "pulse:x", "mic", "mic_device")


SOURCE_OUTPUTS = f"""Source Output #40
\tDriver: protocol-native.c
\tSource: 0
\tProperties:
\t\tapplication.name = "ALSA plug-in [python3]"
\t\tapplication.process.id = "{os.getpid()}"
\t\tcallwatch.stream = "agent"
Source Output #41
\tSource: 1
\tProperties:
\t\tapplication.process.id = "{os.getpid()}"
\t\tcallwatch.stream = "customer"
Source Output #42
\tSource: 1
\tProperties:
\t\tapplication.process.id = "1"
\t\tcallwatch.stream = "agent"
Source Output #43
\tSource: 7
\tProperties:
\t\tapplication.process.id = "{os.getpid()}"
"""


def test_stream_sources_are_this_process_tagged_streams_by_source_name(monkeypatch):
    scripted_pactl(monkeypatch, {("list", "source-outputs"): SOURCE_OUTPUTS,
                                 ("list", "short", "sources"): SHORT_SOURCES})
    assert stream_sources() == {"agent": "bluez_input.headset",
                                "customer": "alsa_output.pci.analog-stereo.monitor"}


def test_stream_sources_without_a_server_is_none(no_pactl):
    assert stream_sources() is None
    assert devices.pulse_sources() is None and devices.default_sink_monitor() is None


def test_pactl_missing_or_failing_is_none(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert devices.pactl("info") is None
    fails = tmp_path / "pactl"
    fails.write_text("#!/bin/sh\necho 'Connection failure' >&2\nexit 1\n")
    fails.chmod(0o755)
    assert devices.pactl("info") is None
    fails.write_text("#!/bin/sh\necho \"$@\"\n")
    assert devices.pactl("list", "short", "sources") == "list short sources\n"


def test_by_name_prefers_an_exact_name_then_any_name_containing_the_spec():
    names = ["Headset Mic", "headset mic (2)", "Speaker"]
    assert by_name(names, "headset mic (2)", str) == ["headset mic (2)"]
    assert by_name(names, "HEADSET", str) == ["Headset Mic", "headset mic (2)"]
    assert by_name(names, "usb", str) == []
