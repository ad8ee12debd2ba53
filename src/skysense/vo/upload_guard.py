"""A streaming pre-scan of VOTable documents before astropy parses them.

:func:`check_votable` takes the bytes of a VOTable (an upload, or an operator's file) and
returns them, decompressed, when they are safe to hand to :func:`astropy.io.votable.parse`.
It reads the document once with the stdlib expat parser and refuses, with an
:class:`~skysense.errors.InputError` that names the element or attribute and the line:

- **anything that points outside the document.** astropy follows ``<STREAM href="...">`` in
  BINARY, BINARY2, FITS and PARQUET data with :func:`urllib.request.urlopen` (``file://``,
  ``http://``, ``ftp://``), so every ``href`` on a STREAM is refused. FITS and PARQUET
  serialisations are refused whole: astropy reads them only from an external stream.
  ``LINK href``, ``xsi:schemaLocation`` and ``ref`` attributes are not followed by astropy
  (``tree.py`` has no other ``urlopen``; ``ref`` names an element of the same document), so
  they are accepted. XInclude elements and namespace declarations are refused, although
  astropy does not process them, so that no later reader can.
- **DTDs and entities.** A DOCTYPE (with or without an internal subset), entity and notation
  declarations, external entity references and skipped entities. Refusing the DOCTYPE itself
  closes billion-laughs expansion and ``SYSTEM "file:///..."`` entities before they are
  declared.
- **Encodings expat does not know natively.** pyexpat decodes any Python codec, astropy's own
  expat only UTF-8, UTF-16, ISO-8859-1 and US-ASCII; refusing the others keeps both parsers
  reading the same elements.
- **Documents too big or slow to build**, beyond these caps (constants: they protect the
  server, they are not a deployment's policy; measured with astropy 8 on one core):

  ==============================  =========  =================================================
  cap                             value      why this value
  ==============================  =========  =================================================
  :data:`MAX_DEPTH`               64         a VOTable is ~8 deep; astropy parses nested
                                             RESOURCE and GROUP elements recursively.
  :data:`MAX_FIELDS`              2,048      FIELD plus PARAM elements; astropy checks names
                                             and resolves references with linear scans
                                             (quadratic: 8,000 take 2 s) and parses each unit
                                             (~0.6 ms); wide published tables have ~1,000.
  :data:`MAX_METADATA_ELEMENTS`   20,000     elements other than TR and TD (INFO, GROUP,
                                             FIELDref, LINK ...): each is a Python object.
  :data:`MAX_ELEMENTS`            20,000,000 all elements (a TD costs at least 5 bytes).
  :data:`MAX_ATTRIBUTE_CHARS`     4,096      any attribute but a PARAM or INFO ``value``.
  :data:`MAX_UNIT_CHARS`          65,536     ``unit`` characters in the document: astropy's
                                             unit parser takes ~20 us a character.
  ==============================  =========  =================================================

  Tables whose declared ``arraysize`` or ``nrows`` would make astropy allocate more than
  ``memory_limit_bytes`` are refused (astropy allocates ``nrows`` rows, at least 512, of the
  declared width up front, whatever the data holds), and so are ``arraysize`` dimensions of
  0: a BINARY row of zero bytes never reaches the end of the stream and astropy loops for
  ever.
- **Compression bombs.** astropy decompresses gzip, bzip2, xz and LZW input transparently and
  without a size limit. Here gzip, bzip2 and xz are decompressed with the stdlib, streaming,
  to at most ``limit_bytes``; LZW and compressed data inside compressed data are refused.

Processing instructions (``<?xml-stylesheet ...?>``) are accepted and ignored: neither expat
nor astropy acts on them, and services write them for browsers.

The scan also keeps, for the first TABLE in document order (the one read with
``table_number=0``), its serialisation and decoded BINARY/BINARY2 stream, so that the reader
can tell a truncated stream from a short table (astropy stops at the first short read and
keeps the whole rows before it).

Pure: bytes in, checked bytes out.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import gzip
import io
import lzma
import re
from dataclasses import dataclass
from xml.parsers import expat

from skysense.errors import InputError
from skysense.vo.limits import Deadline

__all__ = [
    "MAX_DEPTH",
    "MAX_FIELDS",
    "MAX_METADATA_ELEMENTS",
    "MAX_ELEMENTS",
    "MAX_ATTRIBUTE_CHARS",
    "MAX_UNIT_CHARS",
    "UPLOAD_MEMORY_LIMIT_BYTES",
    "MAX_UPLOAD_TABLES",
    "FirstTable",
    "CheckedVOTable",
    "check_votable",
    "decompress",
]

#: Deepest element nesting accepted (a VOTable is about 8 deep; nested RESOURCE and GROUP
#: elements are parsed recursively by astropy).
MAX_DEPTH = 64
#: Most FIELD plus PARAM elements in one document.
MAX_FIELDS = 2048
#: Most elements other than TR and TD (INFO, GROUP, LINK, FIELDref, DESCRIPTION ...).
MAX_METADATA_ELEMENTS = 20_000
#: Most elements of any kind (a TD costs at least 5 bytes, so a 50 MB document stays below).
MAX_ELEMENTS = 20_000_000
#: Longest attribute value (but a PARAM or INFO ``value``), in characters.
MAX_ATTRIBUTE_CHARS = 4096
#: Most ``unit`` attribute characters in one document.
MAX_UNIT_CHARS = 65_536
#: Memory astropy may allocate for an upload's table arrays (see :func:`check_votable`).
UPLOAD_MEMORY_LIMIT_BYTES = 512 << 20
#: Most TAP_UPLOAD tables in one request (each is parsed and loaded into the database; clients
#: upload one or two).
MAX_UPLOAD_TABLES = 16

_CHUNK = 1 << 16
_XINCLUDE_NS = "http://www.w3.org/2001/XInclude"
_ENCODINGS = {"utf-8", "utf-16", "utf-16le", "utf-16be", "iso-8859-1", "us-ascii"}
_DATA_ELEMENTS = {"TR", "TD"}
_ROW_PARENTS = {"TABLEDATA", "TR"}
# Bytes per array element in astropy's row arrays (char/unicodeChar are numpy "U": 4 bytes per
# character); unknown datatypes count as the widest.
_ITEM_BYTES = {
    "boolean": 1,
    "bit": 1,
    "unsignedByte": 1,
    "short": 2,
    "int": 4,
    "long": 8,
    "char": 4,
    "unicodeChar": 4,
    "float": 4,
    "double": 8,
    "floatComplex": 8,
    "doubleComplex": 16,
}
# Bytes per element in a BINARY stream (bits are packed per cell, at least one byte).
_STREAM_BYTES = {**_ITEM_BYTES, "char": 1, "unicodeChar": 2}
_OBJECT_BYTES = 8  # a variable-length cell is one pointer in the row array
_FIRST_ALLOCATION_ROWS = 512  # astropy's first allocation when nrows is not declared
# astropy grows the row array by 1.5 and copies it once more at the end; Arrow copies again.
_ALLOCATION_FACTOR = 3
_ARRAYSIZE = re.compile(r"^(?:[0-9]+x)*[0-9]*\*?$")


@dataclass(frozen=True)
class FirstTable:
    """What the scan saw of the first TABLE in document order.

    ``serialisation`` is ``"TABLEDATA"``, ``"BINARY"``, ``"BINARY2"`` or None (no DATA);
    ``stream`` is the decoded BINARY/BINARY2 stream; ``nrows`` the declared row count.
    """

    line: int
    serialisation: str | None
    stream: bytes | None
    nrows: int | None


@dataclass(frozen=True)
class CheckedVOTable:
    """A document that passed :func:`check_votable`: its (decompressed) bytes and first table."""

    data: bytes
    first_table: FirstTable | None


def decompress(data: bytes, *, limit_bytes: int | None = None, source: str = "upload") -> bytes:
    """``data`` decompressed when it starts with a gzip, bzip2 or xz signature.

    Decompression streams and stops one byte past ``limit_bytes``, so a small bomb costs no
    more than the limit.

    Raises
    ------
    InputError
        LZW (``.Z``) data, corrupt compressed data, compressed data inside compressed data,
        or a decompressed size above ``limit_bytes``.
    """
    opener = _opener(data, source)
    if opener is None:
        return data
    limit = -1 if limit_bytes is None else limit_bytes + 1
    try:
        with opener(io.BytesIO(data)) as stream:
            out = stream.read(limit)
    except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise InputError(f"corrupt compressed data: {exc}", path=source) from None
    if limit_bytes is not None and len(out) > limit_bytes:
        raise InputError(
            f"decompressed document exceeds the limit of {limit_bytes} bytes", path=source
        )
    if _opener(out, source) is not None:
        raise InputError("compressed data inside compressed data is not accepted", path=source)
    return out


def _opener(data: bytes, source: str):
    # The signatures astropy.utils.data.get_readable_fileobj looks for.
    if data[:3] == b"\x1f\x8b\x08":
        return lambda f: gzip.GzipFile(fileobj=f, mode="rb")
    if data[:3] == b"BZh":
        return lambda f: bz2.BZ2File(f, mode="rb")
    if data[:6] == b"\xfd7zXZ\x00":
        return lambda f: lzma.LZMAFile(f, mode="rb")
    if data[:2] == b"\x1f\x9d":
        raise InputError("LZW-compressed (.Z) documents are not accepted", path=source)
    return None


def check_votable(
    data: bytes,
    *,
    limit_bytes: int | None = None,
    memory_limit_bytes: int | None = None,
    source: str = "upload",
    deadline: Deadline | None = None,
) -> CheckedVOTable:
    """Check a VOTable document before parsing it (see the module docstring).

    Parameters
    ----------
    data : bytes
        The document, possibly gzip, bzip2 or xz compressed.
    limit_bytes : int, optional
        Largest decompressed size (no limit when None: an operator's own file).
    memory_limit_bytes : int, optional
        Largest memory astropy may allocate for the row arrays of all tables, estimated from
        the declared FIELDs and the row count (declared ``nrows``, TR elements, stream length),
        at least 512 rows each (no limit when None).
    source : str
        Name used in error messages.
    deadline : Deadline, optional
        Checked every megabyte of the scan.

    Returns
    -------
    CheckedVOTable

    Raises
    ------
    InputError
        Naming the refused element or attribute and its line.
    QueryError
        From ``deadline`` once it has passed.
    """
    data = decompress(data, limit_bytes=limit_bytes, source=source)
    scanner = _Scanner(source, memory_limit_bytes)
    parser = scanner.parser
    try:
        view = memoryview(data)
        for start in range(0, len(data), _CHUNK):
            if deadline is not None and start % (16 * _CHUNK) == 0:
                deadline.check(f"checking {source}")
            parser.Parse(view[start : start + _CHUNK].tobytes(), False)
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        message = expat.errors.messages.get(exc.code, str(exc))
        raise InputError(
            f"not a readable VOTable: not well-formed XML: {message} "
            f"(line {exc.lineno}, column {exc.offset + 1})",
            path=source,
        ) from None
    if not scanner.saw_root:
        raise InputError("not a readable VOTable: the document is empty", path=source)
    return CheckedVOTable(data=data, first_table=scanner.first_table())


@dataclass
class _Table:
    """Running totals of one TABLE element."""

    line: int
    ident: str | None
    ref: str | None
    nrows: int | None
    row_bytes: int = 0  # astropy's row array, per row
    stream_row_bytes: int = 0  # least bytes a row takes in a BINARY stream
    n_fields: int = 0
    names: dict | None = None  # lower-case FIELD name -> line
    rows: int = 0  # TR elements
    serialisation: str | None = None
    streams: int = 0
    stream_chars: int = 0
    stream_text: list | None = None  # base64 text, kept for the first table only


class _Scanner:
    """expat handlers; each check raises InputError, which aborts the parse."""

    def __init__(self, source: str, memory_limit_bytes: int | None):
        self.source = source
        self.memory_limit = memory_limit_bytes
        self.stack: list[str] = []
        self.tags: dict[str, str] = {}  # element name -> upper-case local name
        self.elements = 0
        self.metadata = 0
        self.fields = 0
        self.unit_chars = 0
        self.saw_root = False
        self.tables: list[_Table] = []  # open TABLE elements, innermost last
        self.first: _Table | None = None
        self.row_bytes_by_id: dict[str, tuple[int, int, int]] = {}
        self.allocated = 0
        self.in_stream: _Table | None = None
        p = expat.ParserCreate()
        p.buffer_text = True
        p.buffer_size = _CHUNK
        p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        p.XmlDeclHandler = self._xml_decl
        p.StartDoctypeDeclHandler = self._doctype
        p.EntityDeclHandler = self._entity_decl
        p.UnparsedEntityDeclHandler = self._entity_decl
        p.NotationDeclHandler = self._notation_decl
        p.ExternalEntityRefHandler = self._external_entity
        p.SkippedEntityHandler = self._skipped_entity
        p.StartElementHandler = self._start
        p.EndElementHandler = self._end
        self.parser = p

    # -- refusals -------------------------------------------------------------------------
    def _refuse(self, message: str) -> None:
        raise InputError(f"{message} (line {self.parser.CurrentLineNumber})", path=self.source)

    def _xml_decl(self, version, encoding, standalone) -> None:
        if encoding is not None and encoding.lower() not in _ENCODINGS:
            self._refuse(
                f"XML encoding {encoding!r} is not accepted (use UTF-8, UTF-16, ISO-8859-1 "
                "or US-ASCII)"
            )

    def _doctype(self, name, sysid, pubid, has_internal_subset) -> None:
        self._refuse(f"DOCTYPE {name!r} is not accepted: VOTable uploads may not carry a DTD")

    def _entity_decl(self, name, *args) -> None:
        self._refuse(f"ENTITY {name!r} is not accepted: VOTable uploads may not declare entities")

    def _notation_decl(self, name, *args) -> None:
        self._refuse(f"NOTATION {name!r} is not accepted")

    def _external_entity(self, context, base, sysid, pubid) -> int:
        self._refuse(f"external entity {sysid!r} is not accepted")
        return 0

    def _skipped_entity(self, name, is_parameter) -> None:
        self._refuse(f"entity reference &{name}; is not accepted")

    # -- elements -------------------------------------------------------------------------
    def _start(self, name: str, attrs: dict) -> None:
        tag = self.tags.get(name)
        if tag is None:
            tag = self.tags[name] = name.rsplit(":", 1)[-1].upper()
        self.elements += 1
        stack = self.stack
        if (
            tag in _DATA_ELEMENTS
            and not attrs
            and stack
            and stack[-1] in _ROW_PARENTS
            and len(stack) < MAX_DEPTH
            and self.elements <= MAX_ELEMENTS
        ):
            # The bulk of a TABLEDATA document, a row or a cell in its place, takes this short
            # path (the full checks below would triple the scan time).
            stack.append(tag)
            if tag == "TR" and self.tables:
                self.tables[-1].rows += 1
            return
        self.saw_root = True
        if self.elements > MAX_ELEMENTS:
            self._refuse(f"more than {MAX_ELEMENTS} elements")
        if tag not in _DATA_ELEMENTS:
            self.metadata += 1
            if self.metadata > MAX_METADATA_ELEMENTS:
                self._refuse(
                    f"more than {MAX_METADATA_ELEMENTS} elements other than TR and TD (at <{name}>)"
                )
        if len(self.stack) >= MAX_DEPTH:
            self._refuse(f"<{name}> is nested deeper than {MAX_DEPTH} elements")
        parent = self.stack[-1] if self.stack else None
        self.stack.append(tag)
        for key, value in attrs.items():
            self._check_attribute(name, key, value)
        if parent == "STREAM":
            self._refuse(f"<{name}> inside <STREAM> is not accepted")
        if tag == "INCLUDE":
            self._refuse(f"<{name}> (XInclude) is not accepted")
        if tag in ("FITS", "PARQUET"):
            self._refuse(
                f"<{name}> data is not accepted: astropy reads it only from an external "
                "stream; send TABLEDATA, BINARY or BINARY2"
            )
        table = self.tables[-1] if self.tables else None
        if tag == "TABLE":
            self._open_table(attrs)
        elif tag in ("FIELD", "PARAM"):
            self.fields += 1
            if self.fields > MAX_FIELDS:
                self._refuse(f"more than {MAX_FIELDS} FIELD and PARAM elements")
            width, stream_width = self._cell_bytes(name, attrs)
            if tag == "FIELD" and table is not None and parent == "TABLE":
                self._add_field(table, name, attrs, width, stream_width)
        elif table is not None and parent == "DATA" and table.serialisation is None:
            table.serialisation = tag
        elif tag == "TR" and table is not None:
            table.rows += 1
        elif tag == "STREAM":
            if parent not in ("BINARY", "BINARY2") or table is None:
                self._refuse(f"<{name}> outside BINARY or BINARY2 data is not accepted")
            table.streams += 1
            if table.streams > 1:
                self._refuse(f"a second <{name}> in one table is not accepted")
            self.in_stream = table
            # Text matters only in a STREAM: without a handler elsewhere, expat makes no
            # Python call per TD.
            self.parser.CharacterDataHandler = self._text
            if table is self.first:
                table.stream_text = []

    def _check_attribute(self, element: str, key: str, value: str) -> None:
        local = key.rsplit(":", 1)[-1].lower()
        if len(value) > MAX_ATTRIBUTE_CHARS and local != "value":
            self._refuse(
                f"<{element} {key}=...> is {len(value)} characters long (at most "
                f"{MAX_ATTRIBUTE_CHARS})"
            )
        if local == "unit":
            self.unit_chars += len(value)
            if self.unit_chars > MAX_UNIT_CHARS:
                self._refuse(
                    f"<{element} {key}=...>: more than {MAX_UNIT_CHARS} characters of units "
                    "in the document"
                )
        if local == "href" and element.rsplit(":", 1)[-1].upper() == "STREAM":
            self._refuse(
                f'<{element} {key}="{value[:80]}"> is not accepted: an uploaded table must '
                "carry its data inline (no external streams)"
            )
        if (key == "xmlns" or key.startswith("xmlns:")) and value.strip() == _XINCLUDE_NS:
            self._refuse(f"{key}={value!r} on <{element}>: XInclude is not accepted")

    def _cell_bytes(self, element: str, attrs: dict) -> tuple[int, int]:
        """Bytes of one cell in astropy's row array and in a BINARY stream (least)."""
        datatype = attrs.get("datatype", "")
        arraysize = (attrs.get("arraysize") or "").strip()
        if arraysize and not _ARRAYSIZE.match(arraysize):
            return _OBJECT_BYTES, 0  # astropy refuses it (E13)
        variable = arraysize.endswith("*")
        dims = [d for d in arraysize.rstrip("*").split("x") if d != ""]
        count = 1
        for dim in dims:
            if int(dim) == 0:
                self._refuse(
                    f'<{element} arraysize="{arraysize}">: a dimension of 0 is not accepted'
                )
            count *= int(dim)
        if variable:
            return _OBJECT_BYTES + 1, 4
        if datatype == "bit":
            return count * 2, (count + 7) // 8
        item = _ITEM_BYTES.get(datatype, 16)
        return count * (item + 1), count * _STREAM_BYTES.get(datatype, 1)

    def _open_table(self, attrs: dict) -> None:
        nrows = attrs.get("nrows")
        try:
            declared = int(nrows) if nrows is not None else None
        except ValueError:
            declared = None  # astropy refuses it
        table = _Table(
            line=self.parser.CurrentLineNumber,
            ident=attrs.get("ID"),
            ref=attrs.get("ref"),
            nrows=declared,
            names={},
        )
        if self.first is None:
            self.first = table
        self.tables.append(table)

    def _add_field(self, table: _Table, element: str, attrs: dict, width: int, stream: int):
        name = attrs.get("name")
        if name is None or not name.strip():
            self._refuse(f"<{element}> has {'no' if name is None else 'an empty'} name")
        key = name.strip().lower()
        if key in table.names:
            self._refuse(
                f"<{element} name={name!r}>: the column name is already used on line "
                f"{table.names[key]} (names are case-insensitive)"
            )
        table.names[key] = self.parser.CurrentLineNumber
        table.n_fields += 1
        table.row_bytes += width
        table.stream_row_bytes += stream

    def _text(self, text: str) -> None:
        table = self.in_stream
        if table is not None:
            table.stream_chars += len(text)
            if table.stream_text is not None:
                table.stream_text.append(text)

    def _end(self, name: str) -> None:
        tag = self.stack.pop()
        if tag == "STREAM":
            self.in_stream = None
            self.parser.CharacterDataHandler = None
        elif tag == "TABLE":
            self._close_table(self.tables.pop())

    def _close_table(self, table: _Table) -> None:
        if table.ident:
            self.row_bytes_by_id[table.ident] = (
                table.row_bytes,
                table.stream_row_bytes,
                table.n_fields,
            )
        row_bytes, stream_row_bytes = table.row_bytes, table.stream_row_bytes
        n_fields = table.n_fields
        if table.ref and table.ref in self.row_bytes_by_id:
            row_bytes, stream_row_bytes, n_fields = self.row_bytes_by_id[table.ref]
        if table.serialisation == "BINARY2":
            stream_row_bytes += (n_fields + 7) // 8
        rows = table.rows
        if table.serialisation in ("BINARY", "BINARY2") and n_fields:
            # A BINARY row takes at least stream_row_bytes > 0 (dimensions of 0 are refused),
            # so the stream bounds the rows astropy can read.
            rows = (table.stream_chars * 3 // 4) // max(1, stream_row_bytes)
        rows = max(rows, table.nrows or 0, _FIRST_ALLOCATION_ROWS)
        self.allocated += rows * row_bytes * _ALLOCATION_FACTOR
        if self.memory_limit is not None and self.allocated > self.memory_limit:
            raise InputError(
                f"the TABLE on line {table.line} would need about "
                f"{_mib(rows * row_bytes * _ALLOCATION_FACTOR)} of memory ({_count(rows)} rows "
                f"of {_count(row_bytes)} bytes as declared by its FIELD arraysize and TABLE "
                "nrows); "
                f"the limit is {_mib(self.memory_limit)}",
                path=self.source,
            )

    def first_table(self) -> FirstTable | None:
        table = self.first
        if table is None:
            return None
        stream = None
        if table.stream_text is not None:
            try:
                # As astropy decodes it: non-alphabet characters (whitespace) are discarded.
                stream = base64.b64decode("".join(table.stream_text).encode("ascii"))
            except (binascii.Error, UnicodeEncodeError) as exc:
                raise InputError(
                    f"the {table.serialisation} stream of the TABLE on line {table.line} is "
                    f"not valid base64 ({exc}): truncated?",
                    path=self.source,
                ) from None
        return FirstTable(
            line=table.line,
            serialisation=table.serialisation,
            stream=stream,
            nrows=table.nrows,
        )


def _count(n: int) -> str:
    # Declared sizes can have thousands of digits: too many for a float or a message.
    return str(n) if n < 10**18 else "more than 10^18"


def _mib(n: int) -> str:
    return f"{_count(n >> 20)} MiB"
