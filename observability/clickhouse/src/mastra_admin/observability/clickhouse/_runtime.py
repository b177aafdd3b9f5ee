"""A server's captured stdout/stderr made into one log record per pino record.

Mastra's ``PinoLogger`` prints pino-pretty text with ANSI colours::

    ␛[33mWARN␛[39m [2026-12-07 03:43:49.789 +0000] (probe): ␛[36mBatch flush completed␛[39m
        ␛[35mbatchSize␛[39m: 1
        ␛[35mfailedSignals␛[39m: [
          "logs"
        ]

A record is its head line (level word, time in brackets, logger name in parentheses,
message) and the lines indented by four spaces below it: each ``key: value`` line
starts a field, deeper or unrecognised indented lines continue the field above
(JSON objects, stack traces). ``records`` turns such text into JSON lines the logs
parser reads as structured records (level, time, message, the fields as attributes),
and leaves every other line alone: JSON lines (pino's own output) and lines that are
neither keep the parser's fallback.

The output depends on the input bytes only, so a batch repeated after a crash makes
the same rows (ids come from the batch's token and each record's line number).
"""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring  # the C encoder: a JSON string, no wrapper

__all__ = ["before_last_record", "looks_pretty", "records", "strip_ansi"]

_ANSI = re.compile(r"\x1b\[[0-9;:?]*[ -/]*[@-~]")
_PRETTY_BYTES = re.compile(rb"\x1b\[|^(?:TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\b|^    ", re.M)
_SGR = r"(?:\x1b\[[0-9;]*m)*"
_RECORD = re.compile(
    rf"^{_SGR}(?P<level>TRACE|DEBUG|INFO|WARN|ERROR|FATAL|USERLVL){_SGR} "
    r"\[(?P<time>[^\]\n]{1,64})\](?: \((?P<name>[^)\n]{0,256})\))?:"
    r"(?: (?P<message>[^\n]*))?(?:\n|\Z)(?P<block>(?:    [^\n]*(?:\n|\Z))*)",
    re.M,
)
"""A whole record: the head line, then every line indented by four spaces."""
_FIELD = re.compile(r"    ([A-Za-z_$][\w$.@/-]{0,127}): ?(.*)\Z", re.S)
_LEVELS = {"USERLVL": "info", "TRACE": "debug"}
_TIME = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d(?:\.\d{1,9})?) ?(?:([+-]\d\d):?(\d\d)|Z)")
_SIMPLE_JSON = re.compile(
    r'"[^"\\\x00-\x1f]*"|-?(?:0|[1-9]\d{0,30})(?:\.\d{1,30})?(?:[eE][+-]?\d{1,3})?|true|false|null'
)
MAX_RECORD_LINES = 2000
"""Continuation lines kept with one record; more start fallback lines (a runaway
dump must not make one row of megabytes)."""


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


_strip = strip_ansi


def looks_pretty(data: bytes) -> bool:
    """Whether ``data`` may hold pino-pretty text (else it passes through untouched:
    the JSON-lines rate is not paid for the check beyond one scan)."""
    return _PRETTY_BYTES.search(data) is not None


def _time(text: str) -> str | None:
    """ISO 8601 for the engine to read (``2026-12-07T03:43:49.789+00:00``), or None
    when the bracket holds no date and time with an offset (pino-pretty's
    ``translateTime`` may print a time of day alone: the record's day is unknown)."""
    match = _TIME.fullmatch(text)
    if match is None:
        return None
    day, clock, hours, minutes = match.groups()
    if hours is None:
        return f"{day}T{clock}Z"
    return f"{day}T{clock}{hours}:{minutes}"


def _stack_as_string(lines: list[str]) -> list[str]:
    """pino-pretty prints an error's ``"stack":`` unquoted, on the lines below at a
    deeper indent: quote it, so that the object reads as JSON."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip(" ")
        if stripped != '"stack":':
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(stripped)
        j = i + 1
        stack: list[str] = []
        while j < len(lines) and len(lines[j]) - len(lines[j].lstrip(" ")) > indent:
            stack.append(lines[j].strip())
            j += 1
        out.append(" " * indent + '"stack": ' + json.dumps("\n".join(stack)) + ",")
        i = j
    return out


def _value(lines: list[str]) -> str:
    """A field's value as JSON text: itself when it is JSON, else its text as a
    JSON string. One-line numbers, plain strings and literals skip the decoder."""
    if len(lines) == 1 and _SIMPLE_JSON.fullmatch(lines[0]):
        return lines[0]
    text = "\n".join(lines)
    for candidate in (text, "\n".join(_stack_as_string(lines)) if len(lines) > 1 else None):
        if candidate is None:
            continue
        try:
            return json.dumps(json.loads(candidate), ensure_ascii=False, separators=(",", ":"))
        except (ValueError, RecursionError):
            pass
    return encode_basestring(text)


def _fields(block: str) -> tuple[dict[str, str], list[str]]:
    """A record's continuation lines (ANSI already gone) as fields (name → JSON
    text) and loose lines (indented lines before any ``key: value``)."""
    fields: dict[str, str] = {}
    loose: list[str] = []
    name: str | None = None
    lines: list[str] = []
    for text in block.split("\n"):
        if not text:
            continue
        field = _FIELD.match(text)
        if field is not None:
            if name is not None:
                fields[name] = _value(lines)
            name, lines = field.group(1), [field.group(2).rstrip("\r")]
        elif name is not None:
            lines.append(text[4:].rstrip("\r"))
        else:
            loose.append(text.strip())
    if name is not None:
        fields[name] = _value(lines)
    return fields, loose


def _encode(record: re.Match[str], block: str, token: str) -> bytes:
    level_word, when, name, message = record.group("level", "time", "name", "message")
    fields, loose = _fields(_strip(block) if "\x1b" in block else block) if block else ({}, [])
    # Keys match _FIELD (no quote, backslash or control character): safe as they are.
    if loose:
        fields.setdefault("details", encode_basestring("\n".join(loose)))
    if name:
        fields.setdefault("logger", encode_basestring(name))
    iso = _time(when)
    if iso is None:
        fields.setdefault("time", encode_basestring(when))
    message = message or ""
    if "\x1b" in message:
        message = _strip(message)
    # Mastra's logger prints the trace and span a record belongs to as fields: they
    # are the record's own, as in JSON lines.
    ids = "".join(
        f',"{key}":{fields[key]}'
        for key in ("trace_id", "span_id")
        if key in fields and fields[key].startswith('"')
    )
    attributes = ",".join(
        f'"{key}":{value}' for key, value in fields.items() if key not in ("trace_id", "span_id")
    )
    stamp = f',"timestamp":"{iso}"{ids}' if iso is not None else ids
    level = _LEVELS.get(level_word, level_word.lower())
    return (
        f'{{"id":"{token}-{record.start():010d}","level":"{level}",'
        f'"message":{encode_basestring(message.rstrip(chr(13)))}{stamp},'
        f'"attributes":{{{attributes}}}}}\n'
    ).encode("utf-8", "replace")


def records(data: bytes, token: str) -> bytes:
    """``data`` (whole lines) with every pino-pretty record made one JSON line;
    other lines unchanged, byte for byte. ``token`` names the batch, for the records'
    ids (``{token}-{offset}``: the order of the stream)."""
    text = data.decode("utf-8", "surrogateescape")
    out: list[bytes] = []
    done = 0
    for record in _RECORD.finditer(text):
        if record.start() > done:
            out.append(_kept(text[done : record.start()]))
        block = record.group("block")
        rest = ""
        if block.count("\n") > MAX_RECORD_LINES:
            cut = 0
            for _ in range(MAX_RECORD_LINES):
                cut = block.index("\n", cut) + 1
            block, rest = block[:cut], block[cut:]
        out.append(_encode(record, block, token))
        if rest:
            out.append(_kept(rest))
        done = record.end()
    if done < len(text):
        out.append(_kept(text[done:]))
    return b"".join(out)


def _kept(text: str) -> bytes:
    """Lines that are no pino-pretty record, as they came."""
    return text.encode("utf-8", "surrogateescape")


def before_last_record(pieces: list[bytes]) -> list[bytes]:
    """``pieces`` (consecutive whole lines) without the last record, when the last
    piece shows where it starts: its continuation lines may be in the bytes after, so
    it goes into the next batch whole. Unchanged when the cut would leave nothing or
    the start is not in the last piece (a piece may begin inside a line)."""
    if not pieces:
        return pieces
    last = pieces[-1]
    newline = last.rfind(b"\n", 0, len(last) - 1)
    while newline >= 0 and last.startswith(b"    ", newline + 1):
        newline = last.rfind(b"\n", 0, newline)
    if newline < 0:
        return pieces
    return [*pieces[:-1], last[: newline + 1]]
