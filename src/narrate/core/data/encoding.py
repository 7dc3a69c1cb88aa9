"""Text encodings of uploaded delimited files: detect, then transcode to UTF-8 if needed."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

from charset_normalizer import from_bytes

from narrate.errors import UnsupportedMediaType

__all__ = ["SAMPLE_BYTES", "DetectedEncoding", "detect_encoding", "transcode_to_utf8"]

SAMPLE_BYTES = 256 * 1024
_CHUNK_CHARS = 1 << 20
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Mapped to the codec we decode with: CP1252 is a superset of Latin-1 for printable text.
# Encodings for non-Latin scripts, where the detector is reliable; for anything else on a
# short sample it guesses among Latin code pages, and CP1252 is by far the most likely.
_NON_LATIN = {
    "cp1251",
    "cp1253",
    "cp1255",
    "cp1256",
    "cp866",
    "koi8_r",
    "koi8_u",
    "mac_cyrillic",
    "iso8859_5",
    "iso8859_7",
    "iso8859_8",
    "shift_jis",
    "cp932",
    "euc_jp",
    "gb2312",
    "gb18030",
    "gbk",
    "big5",
    "euc_kr",
    "cp949",
    "cp874",
    "tis_620",
}
_ALIASES = {"latin_1": "cp1252", "iso8859_1": "cp1252", "ascii": "utf-8", "utf_8": "utf-8"}


@dataclass(frozen=True)
class DetectedEncoding:
    """The encoding of a text file.

    Attributes:
        name: A Python codec name (``utf-8``, ``utf-8-sig``, ``utf-16``, ``cp1252`` ...).
        is_utf8: Whether polars can read the bytes as they are (UTF-8, BOM allowed).
    """

    name: str
    is_utf8: bool


def _decodes_as_utf8(sample: bytes, *, is_truncated: bool) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(sample, final=not is_truncated)
    except UnicodeDecodeError:
        return False
    return True


def _decodes(sample: bytes, codec: str) -> bool:
    try:
        sample.decode(codec)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(sample: bytes, *, filename: str, is_truncated: bool) -> DetectedEncoding:
    """Detect the encoding of a file from its first bytes.

    Args:
        sample: The first bytes of the file.
        filename: The name the user gave the file (for messages).
        is_truncated: Whether ``sample`` is only the start of the file.

    Returns:
        The detected encoding.

    Raises:
        UnsupportedMediaType: The bytes are not text in any encoding we recognise.
    """
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return DetectedEncoding(name, is_utf8=name == "utf-8-sig")
    if b"\x00" not in sample and _decodes_as_utf8(sample, is_truncated=is_truncated):
        return DetectedEncoding("utf-8", is_utf8=True)
    best = from_bytes(sample).best()
    if best is None or (b"\x00" in sample and not best.encoding.startswith("utf_16")):
        raise UnsupportedMediaType(
            f"'{filename}' does not look like a text file: it contains binary data.",
            hint="Upload a CSV, TSV, Excel (.xlsx), Parquet or JSON file.",
            details={"file": filename, "problem": "binary_content"},
        )
    name = _ALIASES.get(best.encoding, best.encoding)
    if name not in _NON_LATIN and not name.startswith("utf") and _decodes(sample, "cp1252"):
        name = "cp1252"
    return DetectedEncoding(name, is_utf8=name == "utf-8")


def transcode_to_utf8(source: Path, target: Path, encoding: str, *, filename: str) -> None:
    """Copy ``source`` to ``target`` re-encoded as UTF-8, a chunk at a time.

    Args:
        source: The file in its original encoding.
        target: Where to write the UTF-8 copy.
        encoding: The Python codec of ``source``.
        filename: The name the user gave the file (for messages).

    Raises:
        UnsupportedMediaType: The file is not valid in ``encoding``.
    """
    try:
        with (
            source.open("r", encoding=encoding, newline="") as reader,
            target.open("w", encoding="utf-8", newline="") as writer,
        ):
            while chunk := reader.read(_CHUNK_CHARS):
                writer.write(chunk)
    except (UnicodeDecodeError, LookupError) as exc:
        raise UnsupportedMediaType(
            f"'{filename}' could not be read as {encoding} text: {exc}.",
            hint="Save the file as UTF-8 and upload it again, or name its encoding.",
            details={"file": filename, "encoding": encoding, "problem": "bad_encoding"},
        ) from exc
