"""From a raw recording to utterances: who spoke when, and what they said.

The stages ``lpgnet analyze`` (``lpgnet.serving.analyze``) runs before the model, each
in its own module and each replaceable by a segments file the user already has:

* :mod:`.audio`    the recording decoded once to 16 kHz PCM on disk, read span by span
                   (memory does not grow with the recording's length);
* :mod:`.vad`      voice-activity detection (silero-vad) -> speech segments;
* :mod:`.speakers` speaker turns: one speaker per channel (call-centre stereo), or
                   speaker embeddings (Resemblyzer) clustered;
* :mod:`.asr`      speech recognition (faster-whisper; the packaged tiny.en by default);
* :mod:`.segments` the segment record and the ``--segments`` CSV;
* :mod:`.synthetic` and :mod:`.quality`: generated conversations with known turns
  (espeak-ng voices) and the figures that score a segmentation against them.

Every stage's dependency is in the ``analyze`` extra and loads its weights from the
installed packages or a local folder; nothing is downloaded.
"""

from .segments import Segment, read_segments

__all__ = ["Segment", "read_segments"]
