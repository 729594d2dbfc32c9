"""Data forms (XEP-0004) as a typed model, with FORM_TYPE (XEP-0068) and
validation (XEP-0122).

:func:`parse_form` turns a ``<x xmlns='jabber:x:data'/>`` element into a
:class:`Form` and raises :class:`FormError` when the element breaks a rule of
XEP-0004 §3; :func:`build_form` does the reverse. The model checks its own
invariants (a :class:`Form` that violates XEP-0004 §3 cannot be constructed),
so ``parse_form(build_form(form)) == form`` for every form.

:func:`validate_submission` is what a form-processing entity runs on a
``submit`` form (XEP-0004 §4: validation is the processor's job): required
fields, field-type rules, list options and the XEP-0122 datatypes and
validation methods. It returns human-readable error strings, suitable for the
``<text/>`` of a ``not-acceptable`` stanza error (XEP-0004 §4).

What the model keeps: everything XEP-0004 and XEP-0122 define. Unknown child
elements (e.g. XEP-0221 media) are ignored and not rebuilt. A field's ``type``
is ``None`` when the attribute is absent, which XEP-0004 §3.2 allows (it is
text-single in a ``form``, and inferred from context in a ``submit``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from xmpp_sansio.jid import JID

__all__ = [
    "FORM_TYPE",
    "NS_DATA",
    "NS_VALIDATE",
    "Field",
    "FieldType",
    "Form",
    "FormError",
    "FormType",
    "ListRange",
    "Option",
    "Validation",
    "ValidationMethod",
    "build_form",
    "parse_form",
    "validate_submission",
]

NS_DATA: Final = "jabber:x:data"
"""The data forms namespace (XEP-0004 §9.1)."""
NS_VALIDATE: Final = "http://jabber.org/protocol/xdata-validate"
"""The data forms validation namespace (XEP-0122 §3)."""
FORM_TYPE: Final = "FORM_TYPE"
"""The ``var`` of the field naming a form's type (XEP-0068 §3)."""

_X = f"{{{NS_DATA}}}"
_V = f"{{{NS_VALIDATE}}}"

#: Longest ``<regex/>`` pattern :func:`validate_submission` will run.
MAX_REGEX_LENGTH: Final = 256
#: Longest value a ``<regex/>`` is matched against.
MAX_REGEX_SUBJECT: Final = 1024


class FormError(ValueError):
    """A data form breaks a rule of XEP-0004 or XEP-0122 (or a typed accessor
    was asked for a value of the wrong kind)."""


class FormType(StrEnum):
    """The ``type`` of a data form (XEP-0004 §3.1)."""

    FORM = "form"
    SUBMIT = "submit"
    CANCEL = "cancel"
    RESULT = "result"


class FieldType(StrEnum):
    """Field types (XEP-0004 §3.3)."""

    BOOLEAN = "boolean"
    FIXED = "fixed"
    HIDDEN = "hidden"
    JID_MULTI = "jid-multi"
    JID_SINGLE = "jid-single"
    LIST_MULTI = "list-multi"
    LIST_SINGLE = "list-single"
    TEXT_MULTI = "text-multi"
    TEXT_PRIVATE = "text-private"
    TEXT_SINGLE = "text-single"

    @property
    def is_multi(self) -> bool:
        """Whether the field may carry more than one ``<value/>`` (XEP-0004 §3.2:
        list-multi, jid-multi, text-multi and hidden)."""
        return self in _MULTI_TYPES

    @property
    def is_list(self) -> bool:
        """Whether the field may carry ``<option/>`` children (XEP-0004 §3.2)."""
        return self in (FieldType.LIST_SINGLE, FieldType.LIST_MULTI)


_MULTI_TYPES: Final = frozenset(
    {FieldType.LIST_MULTI, FieldType.JID_MULTI, FieldType.TEXT_MULTI, FieldType.HIDDEN}
)

_TRUE: Final = frozenset({"1", "true"})
_FALSE: Final = frozenset({"0", "false"})


class ValidationMethod(StrEnum):
    """XEP-0122 §3.2 validation methods."""

    BASIC = "basic"
    OPEN = "open"
    RANGE = "range"
    REGEX = "regex"


@dataclass(frozen=True, slots=True)
class Option:
    """An ``<option/>`` of a list field (XEP-0004 §3.2)."""

    value: str
    label: str | None = None


@dataclass(frozen=True, slots=True)
class ListRange:
    """``<list-range/>``: how many values a list-multi takes (XEP-0122 §3.3).
    ``None`` bounds are absent."""

    min: int | None = None
    max: int | None = None

    def __post_init__(self) -> None:
        for bound in (self.min, self.max):
            if bound is not None and bound < 0:
                raise FormError("list-range bounds must be unsigned integers (XEP-0122 §3.3)")


@dataclass(frozen=True, slots=True)
class Validation:
    """A ``<validate/>`` element (XEP-0122).

    ``datatype`` defaults to ``xs:string`` (XEP-0122 §3.1); ``method`` to
    :attr:`ValidationMethod.BASIC` (§3.2: a processor MUST assume basic when
    none is given). ``range_min``/``range_max`` are the lexical bounds of a
    :attr:`~ValidationMethod.RANGE` method (§3.2.3) and ``regex`` the pattern
    of a :attr:`~ValidationMethod.REGEX` one (§3.2.4); they must be ``None``
    for the other methods.
    """

    datatype: str = "xs:string"
    method: ValidationMethod = ValidationMethod.BASIC
    range_min: str | None = None
    range_max: str | None = None
    regex: str | None = None
    list_range: ListRange | None = None

    def __post_init__(self) -> None:
        if not self.datatype:
            raise FormError("empty validation datatype")
        if self.method is not ValidationMethod.RANGE and (
            self.range_min is not None or self.range_max is not None
        ):
            raise FormError("range bounds given for a non-range validation method")
        if (self.method is ValidationMethod.REGEX) != (self.regex is not None):
            raise FormError("a regex validation method needs a pattern, and only it")


@dataclass(frozen=True, slots=True)
class Field:
    """A ``<field/>`` (XEP-0004 §3.2).

    ``type`` is ``None`` when the attribute is absent (see :attr:`kind`).
    ``var`` may be ``None`` only for fixed fields (checked by :class:`Form`).
    """

    var: str | None = None
    type: FieldType | None = None
    label: str | None = None
    desc: str | None = None
    required: bool = False
    values: tuple[str, ...] = ()
    options: tuple[Option, ...] = ()
    validate: Validation | None = None

    @property
    def kind(self) -> FieldType:
        """The type, defaulting to text-single (XEP-0004 §3.2, §3.3)."""
        return FieldType.TEXT_SINGLE if self.type is None else self.type

    @property
    def value(self) -> str | None:
        """The first value, or ``None`` when there is none."""
        return self.values[0] if self.values else None


@dataclass(frozen=True, slots=True)
class Form:
    """A data form (XEP-0004 §3).

    ``reported`` and ``items`` are the table of a ``result`` form
    (XEP-0004 §3.4): ``reported`` is ``None`` when there is no
    ``<reported/>``. Constructing a form that breaks XEP-0004 §3 raises
    :class:`FormError`.
    """

    type: FormType = FormType.FORM
    title: str | None = None
    instructions: tuple[str, ...] = ()
    fields: tuple[Field, ...] = ()
    reported: tuple[Field, ...] | None = None
    items: tuple[tuple[Field, ...], ...] = ()
    _by_var: dict[str, Field] = dataclass_field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        _check_form(self)
        object.__setattr__(self, "_by_var", {f.var: f for f in self.fields if f.var is not None})

    # -- lookups -------------------------------------------------------------

    def field(self, var: str) -> Field | None:
        """The top-level field named ``var``, or ``None``."""
        return self._by_var.get(var)

    def __contains__(self, var: object) -> bool:
        return var in self._by_var

    def values(self, var: str) -> tuple[str, ...]:
        """All values of field ``var`` (``()`` if it is absent)."""
        found = self._by_var.get(var)
        return () if found is None else found.values

    def value(self, var: str) -> str | None:
        """The first value of field ``var``; ``None`` if the field is absent or empty."""
        found = self._by_var.get(var)
        return None if found is None else found.value

    def _scalar(self, var: str) -> str | None:
        """The first value of ``var``, stripped; ``None`` if absent or empty
        (XEP-0004 §3.6 does not tell an empty value from an absent one)."""
        raw = self.value(var)
        return None if raw is None or not raw.strip() else raw.strip()

    def bool_value(self, var: str) -> bool | None:
        """Field ``var`` as a boolean: ``None`` if the field is absent,
        ``False`` if it has no (or an empty) value (XEP-0004 §3.3: the default
        is false), else ``1``/``true`` or ``0``/``false`` (xs:boolean; both
        lexical forms MUST be accepted). Raises :class:`FormError` for anything
        else."""
        if var not in self._by_var:
            return None
        raw = self._scalar(var)
        return False if raw is None else _parse_bool(raw, var)

    def int_value(self, var: str) -> int | None:
        """The first value of ``var`` as an xs:integer; ``None`` if absent or
        empty. Raises :class:`FormError` if it is not one."""
        raw = self._scalar(var)
        if raw is None:
            return None
        parsed = _parse_integer(raw)
        if parsed is None:
            raise FormError(f"field {var!r}: {raw!r} is not an integer")
        return parsed

    def jid_value(self, var: str) -> JID | None:
        """The first value of ``var`` as a JID; ``None`` if absent or empty.
        Raises :class:`FormError` if it is not a valid JID."""
        raw = self._scalar(var)
        return None if raw is None else _parse_jid(raw, var)

    def jid_values(self, var: str) -> tuple[JID, ...]:
        """The non-empty values of ``var`` as JIDs, duplicates dropped
        (XEP-0004 §3.3: duplicate JIDs in jid-multi MUST be ignored). Raises
        :class:`FormError` if one is invalid."""
        out: dict[JID, None] = {}
        for raw in self.values(var):
            if raw.strip():
                out[_parse_jid(raw.strip(), var)] = None
        return tuple(out)

    @property
    def form_type(self) -> str | None:
        """The FORM_TYPE (XEP-0068): the value of the hidden ``FORM_TYPE`` field
        of a ``form`` or ``result`` (XEP-0068 §4.3: a non-hidden one MUST be
        ignored), or of a ``FORM_TYPE`` field that is hidden or has no type in a
        ``submit`` (XEP-0068 §5). ``None`` otherwise."""
        found = self._by_var.get(FORM_TYPE)
        if found is None or not found.values or self.type is FormType.CANCEL:
            return None
        if found.type is FieldType.HIDDEN or (self.type is FormType.SUBMIT and found.type is None):
            return found.values[0]
        return None


def _parse_bool(raw: str, var: str) -> bool:
    text = raw.strip()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FormError(f"field {var!r}: {raw!r} is not a boolean")


def _parse_jid(raw: str, var: str) -> JID:
    try:
        return JID.parse(raw)
    except ValueError as exc:
        raise FormError(f"field {var!r}: {raw!r} is not a valid JID ({exc})") from None


# ---------------------------------------------------------------------------
# invariants


def _check_field(f: Field, form_type: FormType, where: str) -> None:
    kind = f.kind
    if f.var is None and kind is not FieldType.FIXED:
        # XEP-0004 §3.2: only fixed fields may lack a 'var'.
        raise FormError(f"{where}: a {kind} field must have a 'var'")
    if f.options and not kind.is_list:
        # XEP-0004 §3.2: <option/> only in list-single and list-multi.
        raise FormError(f"{where}: field {f.var!r} of type {kind} cannot have options")
    # XEP-0004 §3.2: only multi types may carry more than one value. Outside a
    # 'form', an untyped field's type is inferred from context, so it may.
    inferred = f.type is None and form_type is not FormType.FORM
    if len(f.values) > 1 and not kind.is_multi and not inferred:
        raise FormError(f"{where}: field {f.var!r} of type {kind} has {len(f.values)} values")
    # XEP-0004 §3.3 note **: options are unique by value and by label.
    option_values = [o.value for o in f.options]
    labels = [o.label for o in f.options if o.label is not None]
    if len(set(option_values)) != len(option_values) or len(set(labels)) != len(labels):
        raise FormError(f"{where}: field {f.var!r} has duplicate options")


def _check_fields(fields: tuple[Field, ...], form_type: FormType, where: str) -> None:
    seen: set[str] = set()
    for f in fields:
        _check_field(f, form_type, where)
        if f.var is not None:
            if f.var in seen:
                # XEP-0004 §3.2: 'var' uniquely identifies the field in the form.
                raise FormError(f"{where}: duplicate field {f.var!r}")
            seen.add(f.var)


def _check_form(form: Form) -> None:
    _check_fields(form.fields, form.type, "form")
    if form.reported is None:
        if form.items:
            raise FormError("<item/> without <reported/> (XEP-0004 §3.4)")
        return
    if form.type is not FormType.RESULT:
        raise FormError(f"<reported/> in a form of type {form.type} (XEP-0004 §3.4)")
    if not form.reported:
        raise FormError("<reported/> must contain at least one field (XEP-0004 §3.4)")
    _check_fields(form.reported, form.type, "reported")
    columns = {f.var for f in form.reported if f.var is not None}
    for index, item in enumerate(form.items):
        if not item:
            raise FormError(f"<item/> {index} has no field (XEP-0004 §3.4)")
        _check_fields(item, form.type, f"item {index}")
        missing = columns - {f.var for f in item if f.var is not None}
        if missing:
            # XEP-0004 §3.4: each item MUST contain each reported field.
            raise FormError(f"<item/> {index} lacks the reported fields {sorted(missing)}")


# ---------------------------------------------------------------------------
# parsing


def _only_child(el: Element, tag: str, where: str) -> Element | None:
    found = el.findall(tag)
    if len(found) > 1:
        raise FormError(f"{where}: more than one <{tag.rpartition('}')[2]}/>")
    return found[0] if found else None


def _text(el: Element) -> str:
    return el.text or ""


_METHOD_TAGS: Final = frozenset(f"{_V}{m.value}" for m in ValidationMethod)


def _parse_validation(el: Element, where: str) -> Validation:
    datatype = el.get("datatype", "xs:string")
    method_els = [child for child in el if child.tag in _METHOD_TAGS]
    if len(method_els) > 1:
        # XEP-0122 §3.2: MUST NOT include more than one method.
        raise FormError(f"{where}: more than one validation method")
    method = ValidationMethod.BASIC
    range_min = range_max = regex = None
    if method_els:
        method_el = method_els[0]
        method = ValidationMethod(method_el.tag[len(_V) :])
        if method is ValidationMethod.RANGE:
            range_min, range_max = method_el.get("min"), method_el.get("max")
        elif method is ValidationMethod.REGEX:
            if len(method_el):
                # XEP-0122 §3.2.4: character data only.
                raise FormError(f"{where}: <regex/> must contain character data only")
            regex = _text(method_el)
    list_range = None
    list_range_el = _only_child(el, f"{_V}list-range", where)
    if list_range_el is not None:
        bounds: list[int | None] = []
        for attr in ("min", "max"):
            raw = list_range_el.get(attr)
            if raw is not None and not re.fullmatch(r"[0-9]{1,10}", raw.strip()):
                raise FormError(f"{where}: list-range {attr} {raw!r} is not an unsigned integer")
            bounds.append(None if raw is None else int(raw))
        list_range = ListRange(bounds[0], bounds[1])
    return Validation(datatype, method, range_min, range_max, regex, list_range)


def _parse_field(el: Element, where: str) -> Field:
    raw_type = el.get("type")
    type_: FieldType | None = None
    if raw_type is not None:
        try:
            type_ = FieldType(raw_type)
        except ValueError:
            # XEP-0004 §3.3: an unknown type MUST be treated as text-single.
            type_ = FieldType.TEXT_SINGLE
    var = el.get("var")
    where = f"{where} field {var!r}"
    desc_el = _only_child(el, f"{_X}desc", where)
    required_el = _only_child(el, f"{_X}required", where)
    if required_el is not None and (len(required_el) or (required_el.text or "").strip()):
        raise FormError(f"{where}: <required/> MUST be empty (XEP-0004 §3.2)")
    options: list[Option] = []
    for option_el in el.findall(f"{_X}option"):
        option_values = option_el.findall(f"{_X}value")
        if len(option_values) != 1:
            # XEP-0004 §3.2: exactly one <value/> per option.
            raise FormError(f"{where}: an <option/> must have exactly one <value/>")
        options.append(Option(_text(option_values[0]), option_el.get("label")))
    validate_el = _only_child(el, f"{_V}validate", where)
    return Field(
        var=var,
        type=type_,
        label=el.get("label"),
        desc=None if desc_el is None else _text(desc_el),
        required=required_el is not None,
        values=tuple(_text(v) for v in el.findall(f"{_X}value")),
        options=tuple(options),
        validate=None if validate_el is None else _parse_validation(validate_el, where),
    )


def parse_form(el: Element) -> Form:
    """Parse a ``<x xmlns='jabber:x:data'/>`` element (XEP-0004 §3).

    Raises :class:`FormError` when the element is not a data form or breaks
    XEP-0004 §3 or XEP-0122: missing or unknown form ``type``, a non-fixed
    field without ``var``, duplicate ``var``, several values in a single-valued
    field, options outside list fields or not unique, an ``<option/>`` without
    exactly one ``<value/>``, a non-empty ``<required/>``, a ``<reported/>``
    outside a ``result`` form, an ``<item/>`` lacking a reported field, more
    than one ``<title/>``, ``<desc/>``, ``<validate/>`` or validation method.

    Following the XEP-0004 §3.4 note, ``<reported/>`` may come after
    ``<item/>`` and may coexist with top-level fields.
    """
    if el.tag != f"{_X}x":
        raise FormError(f"not a data form: {el.tag!r}")
    raw_type = el.get("type")
    try:
        form_type = FormType(raw_type or "")
    except ValueError:
        raise FormError(f"missing or unknown form type {raw_type!r} (XEP-0004 §3.1)") from None
    title_el = _only_child(el, f"{_X}title", "form")
    reported_el = _only_child(el, f"{_X}reported", "form")
    reported = None
    if reported_el is not None:
        reported = tuple(_parse_field(f, "reported") for f in reported_el.findall(f"{_X}field"))
    items = tuple(
        tuple(_parse_field(f, f"item {i}") for f in item_el.findall(f"{_X}field"))
        for i, item_el in enumerate(el.findall(f"{_X}item"))
    )
    return Form(
        type=form_type,
        title=None if title_el is None else _text(title_el),
        instructions=tuple(_text(i) for i in el.findall(f"{_X}instructions")),
        fields=tuple(_parse_field(f, "form") for f in el.findall(f"{_X}field")),
        reported=reported,
        items=items,
    )


# ---------------------------------------------------------------------------
# building


def _sub(parent: Element, tag: str, text: str | None = None, **attrs: str | None) -> Element:
    child = SubElement(parent, tag, {k: v for k, v in attrs.items() if v is not None})
    if text:
        child.text = text
    return child


def _build_validation(parent: Element, v: Validation) -> None:
    el = _sub(parent, f"{_V}validate", datatype=v.datatype)
    if v.method is ValidationMethod.RANGE:
        _sub(el, f"{_V}range", min=v.range_min, max=v.range_max)
    elif v.method is ValidationMethod.REGEX:
        _sub(el, f"{_V}regex", v.regex)
    else:
        _sub(el, f"{_V}{v.method.value}")
    if v.list_range is not None:
        lr = v.list_range
        _sub(
            el,
            f"{_V}list-range",
            min=None if lr.min is None else str(lr.min),
            max=None if lr.max is None else str(lr.max),
        )


def _build_field(parent: Element, f: Field) -> None:
    el = _sub(
        parent,
        f"{_X}field",
        var=f.var,
        type=None if f.type is None else f.type.value,
        label=f.label,
    )
    if f.desc is not None:
        _sub(el, f"{_X}desc", f.desc)
    if f.required:
        _sub(el, f"{_X}required")
    if f.validate is not None:
        _build_validation(el, f.validate)
    for value in f.values:
        _sub(el, f"{_X}value", value)
    for option in f.options:
        option_el = _sub(el, f"{_X}option", label=option.label)
        _sub(option_el, f"{_X}value", option.value)


def build_form(form: Form) -> Element:
    """The ``<x xmlns='jabber:x:data'/>`` element for ``form`` (XEP-0004 §3;
    children in the order of the XEP-0004 §10 schema)."""
    el = Element(f"{_X}x", {"type": form.type.value})
    for text in form.instructions:
        _sub(el, f"{_X}instructions", text)
    if form.title is not None:
        _sub(el, f"{_X}title", form.title)
    for f in form.fields:
        _build_field(el, f)
    if form.reported is not None:
        reported_el = _sub(el, f"{_X}reported")
        for f in form.reported:
            _build_field(reported_el, f)
    for item in form.items:
        item_el = _sub(el, f"{_X}item")
        for f in item:
            _build_field(item_el, f)
    return el


# ---------------------------------------------------------------------------
# XEP-0122 datatypes

_INTEGER_RE: Final = re.compile(r"[+-]?[0-9]+")
_DECIMAL_RE: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DOUBLE_RE: Final = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|-?INF|NaN"
)
_TZ: Final = r"(Z|[+-][0-9]{2}:[0-9]{2})?"
_DATE_RE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})" + _TZ)
_TIME_RE: Final = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?" + _TZ)
_DATETIME_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?" + _TZ
)
_LANGUAGE_RE: Final = re.compile(r"[a-zA-Z]{1,8}(?:-[a-zA-Z0-9]{1,8})*")
# RFC 3986 characters never allowed raw in a URI reference (besides controls and space).
_URI_BAD_RE: Final = re.compile(r'[\x00-\x20\x7f<>"{}|\\^`]|%(?![0-9A-Fa-f]{2})')

# Integer types derived from xs:integer (XML Schema Part 2 §3.3), with their bounds.
_INTEGER_BOUNDS: Final[dict[str, tuple[int | None, int | None]]] = {
    "xs:integer": (None, None),
    "xs:long": (-(2**63), 2**63 - 1),
    "xs:int": (-(2**31), 2**31 - 1),
    "xs:short": (-(2**15), 2**15 - 1),
    "xs:byte": (-(2**7), 2**7 - 1),
    "xs:nonNegativeInteger": (0, None),
    "xs:positiveInteger": (1, None),
    "xs:nonPositiveInteger": (None, 0),
    "xs:negativeInteger": (None, -1),
    "xs:unsignedLong": (0, 2**64 - 1),
    "xs:unsignedInt": (0, 2**32 - 1),
    "xs:unsignedShort": (0, 2**16 - 1),
    "xs:unsignedByte": (0, 2**8 - 1),
}

_Ordered = int | Decimal | float | date | datetime


def _parse_integer(text: str) -> int | None:
    if len(text) > 64 or not _INTEGER_RE.fullmatch(text):
        return None
    return int(text)


def _tz(raw: str | None) -> timezone | None:
    if raw is None:
        return None
    if raw == "Z":
        return UTC
    hours, minutes = int(raw[1:3]), int(raw[4:6])
    if minutes > 59 or hours * 60 + minutes > 14 * 60:
        raise ValueError("time zone offset out of range")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if raw[0] == "-" else offset)


def _micro(fraction: str | None) -> int:
    return 0 if fraction is None else int((fraction[1:] + "000000")[:6])


def _parse_date(text: str) -> date | None:
    m = _DATE_RE.fullmatch(text)
    if m is None:
        return None
    try:
        _tz(m.group(4))
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _as_utc(value: datetime) -> datetime:
    # XML Schema leaves comparisons of zoned and unzoned values indeterminate;
    # an unzoned value is taken as UTC here.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_datetime(text: str) -> datetime | None:
    m = _DATETIME_RE.fullmatch(text)
    if m is None:
        return None
    try:
        y, mo, d, h, mi, s = (int(m.group(i)) for i in range(1, 7))
        return _as_utc(datetime(y, mo, d, h, mi, s, _micro(m.group(7)), _tz(m.group(8))))
    except ValueError:
        return None


def _parse_time(text: str) -> datetime | None:
    m = _TIME_RE.fullmatch(text)
    if m is None:
        return None
    try:
        value = time(int(m.group(1)), int(m.group(2)), int(m.group(3)), _micro(m.group(4)))
        # Compared as an instant on a fixed day.
        return _as_utc(datetime.combine(date(2000, 1, 3), value, _tz(m.group(5))))
    except ValueError:
        return None


def _parse_decimal(text: str) -> Decimal | None:
    if len(text) > 256 or not _DECIMAL_RE.fullmatch(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid input
        return None


def _parse_double(text: str) -> float | None:
    if len(text) > 256 or not _DOUBLE_RE.fullmatch(text):
        return None
    return float(text.replace("INF", "inf").replace("NaN", "nan"))


def _ordered_parser(datatype: str) -> Callable[[str], _Ordered | None] | None:
    """How to read values of an ordered datatype, for basic and range
    validation; ``None`` for unordered ones."""
    if datatype in _INTEGER_BOUNDS:
        low, high = _INTEGER_BOUNDS[datatype]

        def bounded(text: str) -> int | None:
            value = _parse_integer(text)
            if value is None or (low is not None and value < low):
                return None
            return None if high is not None and value > high else value

        return bounded
    return {
        "xs:decimal": _parse_decimal,
        "xs:double": _parse_double,
        "xs:float": _parse_double,
        "xs:date": _parse_date,
        "xs:dateTime": _parse_datetime,
        "xs:time": _parse_time,
    }.get(datatype)


def _lexically_valid(datatype: str, text: str) -> bool:
    """XEP-0122 §3.2.1 basic validation against the datatype. Unknown
    datatypes are validated as xs:string (XEP-0122 §4.1)."""
    parser = _ordered_parser(datatype)
    if parser is not None:
        return parser(text.strip()) is not None
    if datatype == "xs:boolean":
        return text.strip() in _TRUE | _FALSE
    if datatype == "xs:anyURI":
        return _URI_BAD_RE.search(text.strip()) is None
    if datatype == "xs:language":
        return _LANGUAGE_RE.fullmatch(text.strip()) is not None
    return True


def _unsafe_regex(pattern: str) -> str | None:
    """Why ``pattern`` is refused, or ``None``.

    Python's backtracking matcher can take exponential time on patterns where
    a repeated group itself contains a quantifier or an alternation (``(a+)+``,
    ``(a|a)*``) and on back-references; those are refused, as are patterns
    longer than :data:`MAX_REGEX_LENGTH`. This is a heuristic guard, not a
    proof of linear time: patterns from untrusted form definitions are still
    best avoided.
    """
    if len(pattern) > MAX_REGEX_LENGTH:
        return f"pattern longer than {MAX_REGEX_LENGTH} characters"
    # Stack of "this group contains a quantifier or an alternation".
    stack = [False]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 < n and pattern[i + 1] in "123456789":
                return "back-references are not supported"
            i += 2
            continue
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        if c == "(":
            stack.append(False)
        elif c == ")" and len(stack) > 1:
            inner = stack.pop()
            following = pattern[i + 1] if i + 1 < n else ""
            if inner and following in ("*", "+", "{"):
                return "a repeated group contains a quantifier or an alternation"
            stack[-1] = stack[-1] or inner or following in ("*", "+", "?", "{")
        elif c in "*+{|" or (c == "?" and pattern[i - 1 : i] != "("):
            stack[-1] = True
        i += 1
    return None


def _check_value(v: Validation, value: str, where: str) -> str | None:
    """One value against a field's XEP-0122 validation; an error or ``None``."""
    if not _lexically_valid(v.datatype, value):
        return f"{where}: {value!r} is not a valid {v.datatype}"
    if v.method is ValidationMethod.RANGE:
        parser = _ordered_parser(v.datatype)
        if parser is None:
            # XEP-0122 §4.7: range MUST NOT be used with unordered types such
            # as xs:string; such a range is ignored.
            return None
        parsed = parser(value.strip())
        for raw, is_min in ((v.range_min, True), (v.range_max, False)):
            if raw is None:
                continue
            bound = parser(raw.strip())
            if bound is None or parsed is None:
                return f"{where}: the range bound {raw!r} is not a valid {v.datatype}"
            try:
                outside = parsed < bound if is_min else parsed > bound  # type: ignore[operator]
            except TypeError:  # pragma: no cover - same parser on both sides
                outside = True
            if outside:
                word = "less than the minimum" if is_min else "more than the maximum"
                return f"{where}: {value!r} is {word} {raw!r}"
    elif v.method is ValidationMethod.REGEX and v.regex is not None:
        refused = _unsafe_regex(v.regex)
        if refused is not None:
            return f"{where}: cannot apply the form's regex ({refused})"
        if len(value) > MAX_REGEX_SUBJECT:
            return f"{where}: value longer than {MAX_REGEX_SUBJECT} characters"
        try:
            matched = re.fullmatch(v.regex, value) is not None
        except re.error as exc:
            return f"{where}: the form's regex is invalid ({exc})"
        if not matched:
            return f"{where}: {value!r} does not match {v.regex!r}"
    return None


# ---------------------------------------------------------------------------
# submissions


def _check_submitted(definition: Field, submitted: Field) -> list[str]:
    var = definition.var
    where = f"field {var!r}"
    kind = definition.kind
    errors: list[str] = []
    if submitted.type is not None and submitted.type is not kind:
        errors.append(f"{where}: submitted as {submitted.type}, expected {kind}")
        return errors
    values = submitted.values
    if len(values) > 1 and not kind.is_multi:
        # XEP-0004 §3.2: single-valued types MUST NOT carry several values.
        errors.append(f"{where}: {kind} takes a single value, got {len(values)}")
        return errors
    if kind is FieldType.BOOLEAN:
        errors += [
            f"{where}: {v!r} is not a boolean" for v in values if v.strip() not in _TRUE | _FALSE
        ]
    elif kind in (FieldType.JID_SINGLE, FieldType.JID_MULTI):
        # XEP-0004 §3.3: JIDs must be valid per the addressing rules.
        for v in values:
            try:
                JID.parse(v)
            except ValueError as exc:
                errors.append(f"{where}: {v!r} is not a valid JID ({exc})")
    validation = definition.validate
    method = ValidationMethod.BASIC if validation is None else validation.method
    if kind.is_list and method is ValidationMethod.BASIC:
        # XEP-0004 §3.3: the submitter MUST NOT insert new options; XEP-0122
        # §3.2: any method other than basic makes a list field open.
        allowed = {o.value for o in definition.options}
        errors += [f"{where}: {v!r} is not one of the options" for v in values if v not in allowed]
    if validation is not None:
        for v in values:
            error = _check_value(validation, v, where)
            if error is not None:
                errors.append(error)
        list_range = validation.list_range
        if kind is FieldType.LIST_MULTI and list_range is not None:
            # XEP-0122 §3.3 (ignored for other types).
            if list_range.min is not None and len(values) < list_range.min:
                errors.append(f"{where}: select at least {list_range.min}")
            if list_range.max is not None and len(values) > list_range.max:
                errors.append(f"{where}: select at most {list_range.max}")
    return errors


def validate_submission(definition: Form, submission: Form) -> list[str]:
    """Check a ``submit`` form against the ``form`` it answers (XEP-0004 §4:
    data validation is the form processor's job); ``[]`` means valid.

    Checked: the submission is of type ``submit``; its FORM_TYPE, if any,
    equals the definition's (XEP-0068); every ``required`` field is present
    with a non-empty value (XEP-0004 §3.2); a type given in the submission
    matches the definition; single-valued types have at most one value;
    booleans are ``0``/``1``/``true``/``false``; JIDs parse (RFC 7622); list
    values are among the options (XEP-0004 §3.3) unless XEP-0122 makes the
    list open; and each value passes the field's XEP-0122 validation: basic
    datatype checks for xs:string, xs:boolean, xs:anyURI, xs:language,
    xs:integer and its derived integer types, xs:decimal, xs:double/float,
    xs:date, xs:dateTime and xs:time (unknown datatypes are xs:string,
    XEP-0122 §4.1); ``<range/>`` for the ordered ones; ``<regex/>`` with
    :func:`re.fullmatch` (Python syntax, close to the POSIX ERE XEP-0122
    §3.2.4 names; patterns :func:`_unsafe_regex` refuses are reported as
    errors); ``<list-range/>`` for list-multi. Fields the definition does not
    have are ignored (XEP-0004 §3.1: the processor MUST ignore them).
    """
    errors: list[str] = []
    if submission.type is not FormType.SUBMIT:
        return [f"the form is of type {submission.type}, expected submit"]
    expected, given = definition.form_type, submission.form_type
    if expected is not None and given is not None and given != expected:
        errors.append(f"FORM_TYPE is {given!r}, expected {expected!r}")
    for definition_field in definition.fields:
        var = definition_field.var
        if var is None or definition_field.kind is FieldType.FIXED or var == FORM_TYPE:
            continue
        submitted = submission.field(var)
        if submitted is None or not any(v.strip() for v in submitted.values):
            # Absent, or present with no (or only empty) values: XEP-0004 §3.6
            # leaves "empty" and "absent" alike; only required fields need one.
            if definition_field.required:
                errors.append(f"field {var!r} is required")
            continue
        errors += _check_submitted(definition_field, submitted)
    return errors
