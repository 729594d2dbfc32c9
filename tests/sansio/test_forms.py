"""Tests for xmpp_sansio.forms: data forms (XEP-0004), FORM_TYPE (XEP-0068)
and validation (XEP-0122)."""

from __future__ import annotations

from xml.etree.ElementTree import Element, fromstring

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmpp_sansio.forms import (
    Field,
    FieldType,
    Form,
    FormError,
    FormType,
    ListRange,
    Option,
    Validation,
    ValidationMethod,
    build_form,
    parse_form,
    validate_submission,
)
from xmpp_sansio.jid import JID
from xmpp_sansio.xml.writer import serialize

X = "{jabber:x:data}"
V = "{http://jabber.org/protocol/xdata-validate}"


def form_el(body: str, type_: str | None = "form") -> Element:
    attr = "" if type_ is None else f" type='{type_}'"
    return fromstring(
        f"<x xmlns='jabber:x:data' xmlns:xdv='http://jabber.org/protocol/xdata-validate'{attr}>"
        f"{body}</x>"
    )


# ---------------------------------------------------------------------------
# parsing

# XEP-0004 §5.1, the bot configuration form (abridged).
CONFIG_FORM = """
<x xmlns='jabber:x:data' type='form'>
  <title>Bot Configuration</title>
  <instructions>Fill out this form to configure your new bot!</instructions>
  <field type='hidden' var='FORM_TYPE'><value>jabber:bot</value></field>
  <field type='fixed'><value>Section 1: Bot Info</value></field>
  <field type='text-single' label='The name of your bot' var='botname'/>
  <field type='text-multi' label='Helpful description of your bot' var='description'/>
  <field type='boolean' label='Public bot?' var='public'><required/></field>
  <field type='text-private' label='Password for special access' var='password'/>
  <field type='list-multi' label='What features will the bot support?' var='features'>
    <option label='Contests'><value>contests</value></option>
    <option label='News'><value>news</value></option>
    <option label='Polls'><value>polls</value></option>
    <option label='Reminders'><value>reminders</value></option>
    <option label='Search'><value>search</value></option>
    <value>news</value>
    <value>search</value>
  </field>
  <field type='list-single' label='Maximum number of subscribers' var='maxsubs'>
    <value>20</value>
    <option label='10'><value>10</value></option>
    <option label='20'><value>20</value></option>
    <option label='30'><value>30</value></option>
  </field>
  <field type='jid-multi' label='People to invite' var='invitelist'>
    <desc>Tell all your friends about your new bot!</desc>
  </field>
</x>
"""


def test_parse_reads_the_xep_0004_configuration_form() -> None:
    form = parse_form(fromstring(CONFIG_FORM))
    assert form.type is FormType.FORM
    assert form.title == "Bot Configuration"
    assert form.instructions == ("Fill out this form to configure your new bot!",)
    assert form.form_type == "jabber:bot"
    assert [f.var for f in form.fields] == [
        "FORM_TYPE",
        None,
        "botname",
        "description",
        "public",
        "password",
        "features",
        "maxsubs",
        "invitelist",
    ]
    public = form.field("public")
    assert public is not None and public.required and public.type is FieldType.BOOLEAN
    features = form.field("features")
    assert features is not None
    assert features.values == ("news", "search")
    assert features.options[0] == Option("contests", "Contests")
    invite = form.field("invitelist")
    assert invite is not None and invite.desc == "Tell all your friends about your new bot!"
    assert form.value("maxsubs") == "20"
    assert "botname" in form and "nothing" not in form
    assert form.field("nothing") is None and form.values("nothing") == ()


def test_parse_reads_a_result_table_with_reported_and_items() -> None:
    form = parse_form(
        form_el(
            "<title>Search results</title>"
            "<reported><field var='name' type='text-single' label='Name'/>"
            "<field var='jid' type='jid-single'/></reported>"
            "<item><field var='name'><value>Juliet</value></field>"
            "<field var='jid'><value>juliet@capulet.lit</value></field></item>"
            "<item><field var='name'><value/></field>"
            "<field var='jid'><value>romeo@montague.lit</value></field></item>",
            "result",
        )
    )
    assert form.reported is not None and [f.var for f in form.reported] == ["name", "jid"]
    assert len(form.items) == 2
    assert form.items[1][0].values == ("",)


def test_parse_accepts_reported_after_items_as_older_revisions_sent() -> None:
    # XEP-0004 §3.4 note: implementations are encouraged to be flexible.
    form = parse_form(
        form_el(
            "<item><field var='a'><value>1</value></field></item><reported><field var='a'/></reported>",
            "result",
        )
    )
    assert form.reported == (Field("a"),)


def test_unknown_field_type_is_treated_as_text_single() -> None:
    form = parse_form(form_el("<field var='a' type='colour'><value>red</value></field>"))
    assert form.fields[0].type is FieldType.TEXT_SINGLE


def test_untyped_fields_outside_form_may_carry_several_values() -> None:
    # XEP-0128 §3.1: <field var='ip_version'> with two values in a result.
    body = "<field var='ip_version'><value>ipv4</value><value>ipv6</value></field>"
    assert parse_form(form_el(body, "result")).values("ip_version") == ("ipv4", "ipv6")
    assert parse_form(form_el(body, "submit")).values("ip_version") == ("ipv4", "ipv6")
    with pytest.raises(FormError):
        parse_form(form_el(body, "form"))  # untyped in a form: text-single


@pytest.mark.parametrize(
    ("body", "type_"),
    [
        ("", None),  # XEP-0004 §3: 'type' is required
        ("", "questionnaire"),
        ("<field type='text-single'/>", "form"),  # no var
        ("<field var='a'/><field var='a'/>", "form"),  # duplicate var
        ("<field var='a' type='text-single'><value>1</value><value>2</value></field>", "form"),
        ("<field var='a' type='boolean'><value>1</value><value>0</value></field>", "result"),
        ("<field var='a' type='text-single'><option><value>x</value></option></field>", "form"),
        (
            "<field var='a' type='list-single'><option><value>x</value><value>y</value></option></field>",
            "form",
        ),
        ("<field var='a' type='list-single'><option/></field>", "form"),
        (
            "<field var='a' type='list-multi'><option><value>x</value></option>"
            "<option><value>x</value></option></field>",
            "form",
        ),
        (
            "<field var='a' type='list-multi'><option label='L'><value>x</value></option>"
            "<option label='L'><value>y</value></option></field>",
            "form",
        ),
        ("<field var='a'><required>yes</required></field>", "form"),
        ("<reported><field var='a'/></reported>", "form"),  # reported outside result
        ("<reported/>", "result"),
        ("<reported><field var='a'/></reported><reported><field var='a'/></reported>", "result"),
        ("<item><field var='a'/></item>", "result"),  # item without reported
        ("<reported><field var='a'/></reported><item><field var='b'/></item>", "result"),
        ("<reported><field var='a'/></reported><item/>", "result"),
        ("<title>a</title><title>b</title>", "form"),
        ("<field var='a'><desc>a</desc><desc>b</desc></field>", "form"),
        ("<field var='a'><xdv:validate><xdv:basic/><xdv:open/></xdv:validate></field>", "form"),
        ("<field var='a'><xdv:validate/><xdv:validate/></field>", "form"),
        (
            "<field var='a'><xdv:validate><xdv:list-range min='-1'/></xdv:validate></field>",
            "form",
        ),
        ("<field var='a'><xdv:validate><xdv:regex><b/></xdv:regex></xdv:validate></field>", "form"),
    ],
)
def test_parse_rejects_forms_breaking_xep_0004(body: str, type_: str | None) -> None:
    with pytest.raises(FormError):
        parse_form(form_el(body, type_))


def test_parse_rejects_other_elements() -> None:
    with pytest.raises(FormError):
        parse_form(fromstring("<x xmlns='jabber:x:oob' type='form'/>"))


def test_parse_reads_xep_0122_validation() -> None:
    form = parse_form(
        form_el(
            "<field var='evt.date' type='text-single'>"
            "<xdv:validate datatype='xs:dateTime'>"
            "<xdv:range min='2003-10-05T00:00:00-07:00' max='2003-10-24T23:59:59-07:00'/>"
            "</xdv:validate><value>2003-10-06T11:22:00-07:00</value></field>"
            "<field var='ssn'><xdv:validate><xdv:regex>([0-9]{3})-([0-9]{2})</xdv:regex>"
            "</xdv:validate></field>"
            "<field var='n' type='list-multi'><xdv:validate><xdv:list-range min='1' max='3'/>"
            "</xdv:validate></field>"
            "<field var='bare'><xdv:validate/></field>"
        )
    )
    date_field = form.field("evt.date")
    assert date_field is not None
    assert date_field.validate == Validation(
        "xs:dateTime",
        ValidationMethod.RANGE,
        range_min="2003-10-05T00:00:00-07:00",
        range_max="2003-10-24T23:59:59-07:00",
    )
    ssn = form.field("ssn")
    assert ssn is not None and ssn.validate is not None
    assert ssn.validate.datatype == "xs:string"  # XEP-0122 §3.1 default
    assert ssn.validate.regex == "([0-9]{3})-([0-9]{2})"
    n = form.field("n")
    assert n is not None and n.validate is not None
    assert n.validate.method is ValidationMethod.BASIC
    assert n.validate.list_range == ListRange(1, 3)
    bare = form.field("bare")
    assert bare is not None and bare.validate == Validation()  # basic is assumed (§3.2)


def test_model_refuses_to_build_invalid_forms() -> None:
    with pytest.raises(FormError):
        Form(fields=(Field("a", FieldType.TEXT_SINGLE, values=("1", "2")),))
    with pytest.raises(FormError):
        Form(fields=(Field(None, FieldType.BOOLEAN),))
    with pytest.raises(FormError):
        Validation(method=ValidationMethod.REGEX)
    with pytest.raises(FormError):
        Validation(range_min="1")
    with pytest.raises(FormError):
        ListRange(-1)


# ---------------------------------------------------------------------------
# FORM_TYPE and typed accessors


def test_form_type_is_the_hidden_form_type_field() -> None:
    hidden = Field("FORM_TYPE", FieldType.HIDDEN, values=("urn:example",))
    assert Form(FormType.FORM, fields=(hidden,)).form_type == "urn:example"
    assert Form(FormType.RESULT, fields=(hidden,)).form_type == "urn:example"
    # XEP-0068 §4.3: not hidden -> not a context indicator.
    shown = Field("FORM_TYPE", FieldType.TEXT_SINGLE, values=("urn:example",))
    assert Form(FormType.FORM, fields=(shown,)).form_type is None
    # XEP-0068 §5: an untyped FORM_TYPE in a submission counts.
    untyped = Field("FORM_TYPE", values=("urn:example",))
    assert Form(FormType.SUBMIT, fields=(untyped,)).form_type == "urn:example"
    assert Form(FormType.FORM, fields=(untyped,)).form_type is None
    assert Form(FormType.CANCEL).form_type is None


def test_typed_accessors_convert_values() -> None:
    form = Form(
        FormType.SUBMIT,
        fields=(
            Field("yes", values=("true",)),
            Field("one", values=("1",)),
            Field("no", values=("0",)),
            Field("unset", FieldType.BOOLEAN),
            Field("blank", values=("",)),
            Field("junk", values=("maybe",)),
            Field("count", values=(" 42 ",)),
            Field("who", values=("Juliet@Capulet.lit/balcony",)),
            Field(
                "people",
                FieldType.JID_MULTI,
                values=("a@example.com", "A@EXAMPLE.com", "b@example.com"),
            ),
            Field("bad", values=("@nope",)),
        ),
    )
    assert form.bool_value("yes") is True
    assert form.bool_value("one") is True
    assert form.bool_value("no") is False
    assert form.bool_value("unset") is False  # XEP-0004 §3.3: the default is false
    assert form.bool_value("absent") is None
    assert form.bool_value("blank") is False
    assert form.int_value("blank") is None and form.jid_value("blank") is None
    assert form.jid_values("blank") == ()
    with pytest.raises(FormError):
        form.bool_value("junk")
    assert form.int_value("count") == 42
    assert form.int_value("absent") is None
    with pytest.raises(FormError):
        form.int_value("junk")
    assert form.jid_value("who") == JID.parse("juliet@capulet.lit/balcony")
    assert form.jid_value("absent") is None
    # XEP-0004 §3.3: duplicate JIDs in jid-multi MUST be ignored.
    assert form.jid_values("people") == (
        JID.parse("a@example.com"),
        JID.parse("b@example.com"),
    )
    with pytest.raises(FormError):
        form.jid_value("bad")


# ---------------------------------------------------------------------------
# building


def test_build_writes_the_xep_0004_layout() -> None:
    form = Form(
        FormType.FORM,
        title="T",
        instructions=("one", "two"),
        fields=(
            Field(
                "color",
                FieldType.LIST_SINGLE,
                label="Colour",
                desc="Pick one",
                required=True,
                values=("red",),
                options=(Option("red", "Red"), Option("blue")),
                validate=Validation(list_range=ListRange(max=1)),
            ),
        ),
    )
    el = build_form(form)
    assert el.tag == f"{X}x" and el.get("type") == "form"
    assert [c.tag for c in el] == [f"{X}instructions", f"{X}instructions", f"{X}title", f"{X}field"]
    field = el.find(f"{X}field")
    assert field is not None
    assert field.attrib == {"var": "color", "type": "list-single", "label": "Colour"}
    assert [c.tag for c in field] == [
        f"{X}desc",
        f"{X}required",
        f"{V}validate",
        f"{X}value",
        f"{X}option",
        f"{X}option",
    ]
    validate = field.find(f"{V}validate")
    assert validate is not None and validate.get("datatype") == "xs:string"
    assert [c.tag for c in validate] == [f"{V}basic", f"{V}list-range"]
    list_range = validate.find(f"{V}list-range")
    assert list_range is not None and list_range.attrib == {"max": "1"}
    assert field.findall(f"{X}option")[1].attrib == {}
    assert parse_form(el) == form


# Text that XML 1.0 can carry (RFC 6120 §11.1).
xml_text = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=8)
short = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=6)


@st.composite
def validations(draw: st.DrawFn) -> Validation:
    method = draw(st.sampled_from(ValidationMethod))
    list_range = draw(
        st.none()
        | st.builds(
            ListRange,
            st.none() | st.integers(0, 10**6),
            st.none() | st.integers(0, 10**6),
        )
    )
    return Validation(
        datatype=draw(st.sampled_from(["xs:string", "xs:integer", "xs:dateTime", "x:custom"])),
        method=method,
        range_min=draw(st.none() | xml_text) if method is ValidationMethod.RANGE else None,
        range_max=draw(st.none() | xml_text) if method is ValidationMethod.RANGE else None,
        regex=draw(xml_text) if method is ValidationMethod.REGEX else None,
        list_range=list_range,
    )


@st.composite
def fields(draw: st.DrawFn, form_type: FormType, var: str | None) -> Field:
    type_ = draw(st.none() | st.sampled_from(FieldType))
    kind = FieldType.TEXT_SINGLE if type_ is None else type_
    if var is None and kind is not FieldType.FIXED:
        var = "v"
    multi = kind.is_multi or (type_ is None and form_type is not FormType.FORM)
    values = draw(st.lists(xml_text, max_size=3 if multi else 1))
    options: list[Option] = []
    if kind.is_list:
        option_values = draw(st.lists(xml_text, max_size=3, unique=True))
        labels = draw(st.lists(short, min_size=len(option_values), max_size=3, unique=True))
        options = [
            Option(value, draw(st.sampled_from([None, label])))
            for value, label in zip(option_values, labels, strict=False)
        ]
    return Field(
        var=var,
        type=type_,
        label=draw(st.none() | xml_text),
        desc=draw(st.none() | xml_text),
        required=draw(st.booleans()),
        values=tuple(values),
        options=tuple(options),
        validate=draw(st.none() | validations()),
    )


@st.composite
def field_lists(draw: st.DrawFn, form_type: FormType, vars_: list[str]) -> tuple[Field, ...]:
    out = [draw(fields(form_type, var)) for var in vars_]
    if draw(st.booleans()):
        out.append(Field(None, FieldType.FIXED, values=(draw(xml_text),)))
    return tuple(out)


@st.composite
def forms(draw: st.DrawFn) -> Form:
    form_type = draw(st.sampled_from(FormType))
    top_vars = draw(st.lists(short, max_size=4, unique=True))
    reported: tuple[Field, ...] | None = None
    items: tuple[tuple[Field, ...], ...] = ()
    if form_type is FormType.RESULT and draw(st.booleans()):
        columns = draw(st.lists(short, min_size=1, max_size=3, unique=True))
        reported = draw(field_lists(form_type, columns))
        items = tuple(draw(field_lists(form_type, columns)) for _ in range(draw(st.integers(0, 2))))
    return Form(
        type=form_type,
        title=draw(st.none() | xml_text),
        instructions=tuple(draw(st.lists(xml_text, max_size=2))),
        fields=draw(field_lists(form_type, top_vars)),
        reported=reported,
        items=items,
    )


@given(forms())
def test_parse_of_build_is_identity(form: Form) -> None:
    assert parse_form(build_form(form)) == form


@given(forms())
def test_forms_survive_the_wire(form: Form) -> None:
    assert parse_form(fromstring(serialize(build_form(form)))) == form


# ---------------------------------------------------------------------------
# validate_submission


def submit(*fields: Field) -> Form:
    return Form(FormType.SUBMIT, fields=fields)


def test_valid_submission_of_the_configuration_form_has_no_errors() -> None:
    definition = parse_form(fromstring(CONFIG_FORM))
    submission = submit(
        Field("FORM_TYPE", FieldType.HIDDEN, values=("jabber:bot",)),
        Field("botname", values=("The Jabber Google Bot",)),
        Field("description", values=("line one", "line two")),
        Field("public", values=("0",)),
        Field("features", values=("news", "search")),
        Field("maxsubs", values=("20",)),
        Field("invitelist", values=("juliet@capulet.lit", "romeo@montague.lit")),
        Field("unknown-extra", values=("ignored",)),  # XEP-0004 §3.1: ignored
    )
    assert validate_submission(definition, submission) == []


def test_missing_or_empty_required_field_is_an_error() -> None:
    definition = Form(fields=(Field("name", required=True), Field("nick")))
    assert validate_submission(definition, submit()) == ["field 'name' is required"]
    assert validate_submission(definition, submit(Field("name", values=(" ",)))) == [
        "field 'name' is required"
    ]
    assert validate_submission(definition, submit(Field("name", values=("x",)))) == []


def test_only_submit_forms_are_submissions() -> None:
    definition = Form(fields=(Field("a"),))
    assert validate_submission(definition, Form(FormType.CANCEL)) != []
    assert validate_submission(definition, Form(FormType.RESULT)) != []


def test_form_type_of_the_submission_must_match() -> None:
    definition = Form(fields=(Field("FORM_TYPE", FieldType.HIDDEN, values=("urn:a",)),))
    wrong = submit(Field("FORM_TYPE", FieldType.HIDDEN, values=("urn:b",)))
    assert validate_submission(definition, wrong) == ["FORM_TYPE is 'urn:b', expected 'urn:a'"]
    assert validate_submission(definition, submit(Field("FORM_TYPE", values=("urn:a",)))) == []


def test_type_checks_for_booleans_jids_and_single_values() -> None:
    definition = Form(
        fields=(
            Field("flag", FieldType.BOOLEAN),
            Field("who", FieldType.JID_SINGLE),
            Field("people", FieldType.JID_MULTI),
            Field("name", FieldType.TEXT_SINGLE),
        )
    )
    good = submit(
        Field("flag", values=("true",)),
        Field("who", values=("juliet@capulet.lit",)),
        Field("people", values=("a@example.com", "a@example.com")),  # duplicates ignored
        Field("name", values=("x",)),
    )
    assert validate_submission(definition, good) == []
    bad = submit(
        Field("flag", values=("yes",)),
        Field("who", values=("juliet@",)),
        Field("people", values=("ok@example.com", "a@b@c")),
        Field("name", values=("x", "y")),
    )
    errors = validate_submission(definition, bad)
    assert len(errors) == 4
    assert errors[0] == "field 'flag': 'yes' is not a boolean"
    assert errors[1].startswith("field 'who': 'juliet@' is not a valid JID")
    assert errors[2].startswith("field 'people': 'a@b@c' is not a valid JID")
    assert errors[3] == "field 'name': text-single takes a single value, got 2"


def test_submitted_type_must_match_the_definition() -> None:
    definition = Form(fields=(Field("a", FieldType.TEXT_SINGLE),))
    errors = validate_submission(definition, submit(Field("a", FieldType.BOOLEAN, values=("1",))))
    assert errors == ["field 'a': submitted as boolean, expected text-single"]


def test_list_values_must_be_among_the_options_unless_open() -> None:
    options = (Option("a"), Option("b"))
    definition = Form(
        fields=(
            Field("closed", FieldType.LIST_MULTI, options=options),
            Field(
                "open",
                FieldType.LIST_SINGLE,
                options=options,
                validate=Validation(method=ValidationMethod.OPEN),
            ),
        )
    )
    submission = submit(Field("closed", values=("a", "c")), Field("open", values=("z",)))
    assert validate_submission(definition, submission) == [
        "field 'closed': 'c' is not one of the options"
    ]


def test_list_range_bounds_the_number_of_selections() -> None:
    definition = Form(
        fields=(
            Field(
                "notify",
                FieldType.LIST_MULTI,
                options=(Option("mail"), Option("xmpp"), Option("phone")),
                validate=Validation(list_range=ListRange(2, 2)),
            ),
        )
    )
    assert validate_submission(definition, submit(Field("notify", values=("mail",)))) == [
        "field 'notify': select at least 2"
    ]
    assert validate_submission(definition, submit(Field("notify", values=("mail", "xmpp")))) == []
    too_many = submit(Field("notify", values=("mail", "xmpp", "phone")))
    assert validate_submission(definition, too_many) == ["field 'notify': select at most 2"]


@pytest.mark.parametrize(
    ("datatype", "good", "bad"),
    [
        ("xs:integer", ["0", "-17", "+42", " 7 "], ["1.5", "", "x", "1e3"]),
        ("xs:byte", ["-128", "127"], ["128", "-129"]),
        ("xs:unsignedShort", ["0", "65535"], ["-1", "65536"]),
        ("xs:boolean", ["true", "false", "1", "0"], ["True", "yes", "2"]),
        ("xs:decimal", ["1.5", "-.5", "3"], ["1e3", "1.2.3"]),
        ("xs:double", ["1e3", "INF", "-INF", "NaN", ".5"], ["inf", "e3", "1e"]),
        ("xs:date", ["2003-10-06", "2003-10-06Z", "2003-10-06+13:00"], ["2003-02-30", "03-10-06"]),
        (
            "xs:dateTime",
            ["2003-10-06T11:22:00-07:00", "2003-10-06T11:22:00.5Z", "2003-10-06T11:22:00"],
            ["2003-10-06 11:22:00", "2003-10-06T25:00:00Z", "2003-10-06T11:22:00+15:00"],
        ),
        ("xs:time", ["11:22:00", "23:59:59.999Z"], ["24:00:01", "11:22"]),
        ("xs:anyURI", ["http://example.com/a%20b", "urn:xmpp:ping", ""], ["a b", "x%zz", "<a>"]),
        ("xs:language", ["en", "en-GB", "i-klingon"], ["toolongtag", "en_GB", "en-"]),
        ("xs:string", ["anything at all", ""], []),
        ("x:unknown", ["anything"], []),  # XEP-0122 §4.1: validated as xs:string
    ],
)
def test_basic_validation_checks_the_datatype(
    datatype: str, good: list[str], bad: list[str]
) -> None:
    definition = Form(fields=(Field("f", validate=Validation(datatype)),))
    for value in good:
        assert validate_submission(definition, submit(Field("f", values=(value,)))) == [], value
    for value in bad:
        if not value.strip():
            continue  # an empty value is "no value" (XEP-0004 §3.6)
        errors = validate_submission(definition, submit(Field("f", values=(value,))))
        assert errors == [f"field 'f': {value!r} is not a valid {datatype}"], value


def test_range_validation_on_integers_and_date_times() -> None:
    definition = Form(
        fields=(
            Field(
                "n",
                validate=Validation("xs:integer", ValidationMethod.RANGE, "1", "10"),
            ),
            Field(
                "when",
                validate=Validation(
                    "xs:dateTime",
                    ValidationMethod.RANGE,
                    "2003-10-05T00:00:00-07:00",
                    "2003-10-24T23:59:59-07:00",
                ),
            ),
        )
    )
    ok = submit(Field("n", values=("10",)), Field("when", values=("2003-10-06T11:22:00-07:00",)))
    assert validate_submission(definition, ok) == []
    # 2003-10-25T06:00:00Z is 2003-10-24T23:00:00-07:00: inside
    assert (
        validate_submission(definition, submit(Field("when", values=("2003-10-25T06:00:00Z",))))
        == []
    )
    bad = submit(Field("n", values=("0",)), Field("when", values=("2003-10-25T07:00:00Z",)))
    assert validate_submission(definition, bad) == [
        "field 'n': '0' is less than the minimum '1'",
        "field 'when': '2003-10-25T07:00:00Z' is more than the maximum '2003-10-24T23:59:59-07:00'",
    ]


def test_range_on_strings_is_ignored_and_bad_bounds_are_reported() -> None:
    definition = Form(
        fields=(
            Field("s", validate=Validation("xs:string", ValidationMethod.RANGE, "b", "c")),
            Field("n", validate=Validation("xs:integer", ValidationMethod.RANGE, "one")),
        )
    )
    errors = validate_submission(
        definition, submit(Field("s", values=("zzz",)), Field("n", values=("5",)))
    )
    assert errors == ["field 'n': the range bound 'one' is not a valid xs:integer"]


def test_regex_validation_matches_the_whole_value() -> None:
    # XEP-0122 §3.2.4 example.
    definition = Form(
        fields=(
            Field(
                "ssn",
                validate=Validation(
                    method=ValidationMethod.REGEX, regex="([0-9]{3})-([0-9]{2})-([0-9]{4})"
                ),
            ),
        )
    )
    assert validate_submission(definition, submit(Field("ssn", values=("123-12-1234",)))) == []
    errors = validate_submission(definition, submit(Field("ssn", values=("123-12-12345",))))
    assert errors == [
        "field 'ssn': '123-12-12345' does not match '([0-9]{3})-([0-9]{2})-([0-9]{4})'"
    ]


@pytest.mark.parametrize(
    "pattern",
    ["(a+)+$", "(a|a)*b", "((ab)*c)+", "(a)\\1", "x" * 300],
)
def test_potentially_catastrophic_regexes_are_refused_not_run(pattern: str) -> None:
    definition = Form(
        fields=(Field("f", validate=Validation(method=ValidationMethod.REGEX, regex=pattern)),)
    )
    errors = validate_submission(definition, submit(Field("f", values=("a" * 50 + "!",))))
    assert len(errors) == 1 and "cannot apply the form's regex" in errors[0]


def test_invalid_regex_and_overlong_values_are_reported() -> None:
    definition = Form(
        fields=(
            Field("bad", validate=Validation(method=ValidationMethod.REGEX, regex="[a-")),
            Field("long", validate=Validation(method=ValidationMethod.REGEX, regex="a*")),
        )
    )
    errors = validate_submission(
        definition, submit(Field("bad", values=("a",)), Field("long", values=("a" * 5000,)))
    )
    assert errors[0].startswith("field 'bad': the form's regex is invalid")
    assert errors[1] == "field 'long': value longer than 1024 characters"


def test_text_multi_values_are_validated_one_by_one() -> None:
    definition = Form(
        fields=(Field("ports", FieldType.TEXT_MULTI, validate=Validation("xs:unsignedShort")),)
    )
    errors = validate_submission(definition, submit(Field("ports", values=("5222", "99999"))))
    assert errors == ["field 'ports': '99999' is not a valid xs:unsignedShort"]
