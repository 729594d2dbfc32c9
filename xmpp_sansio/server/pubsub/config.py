"""A node's configuration: the ``pubsub#node_config`` form (XEP-0060 §16.4.4)
and publish-options preconditions (XEP-0060 §7.1.5).

:class:`NodeConfig` is the typed value; :func:`config_form` builds the form a
configure request gets (XEP-0060 §8.2.2), :func:`apply_form` reads a
submitted one over a base configuration (§8.2.4, also create-and-configure,
§8.1.3), :func:`check_preconditions` compares publish-options with a node
(§7.1.5). ``max_items`` ``None`` is ``max`` (XEP-0060 §16.4.4, v1.15.6): the
service's own limit. :meth:`NodeConfig.pairs` / :meth:`NodeConfig.from_pairs`
are the storage form (field name, value) both backends keep.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Final

from ...errors import StanzaErrorCondition
from ...forms import FORM_TYPE, Field, FieldType, Form, FormType, Option
from .protocol import PubSubError

__all__ = [
    "NODE_CONFIG",
    "PUBLISH_OPTIONS",
    "AccessModel",
    "NodeConfig",
    "PublishModel",
    "SendLast",
    "apply_form",
    "check_preconditions",
    "config_form",
]

NODE_CONFIG: Final = "http://jabber.org/protocol/pubsub#node_config"
PUBLISH_OPTIONS: Final = "http://jabber.org/protocol/pubsub#publish-options"
SUBSCRIBE_OPTIONS: Final = "http://jabber.org/protocol/pubsub#subscribe_options"
_P: Final = "pubsub#"


class AccessModel(StrEnum):
    """Who may subscribe and retrieve items (XEP-0060 §4.5)."""

    OPEN = "open"
    PRESENCE = "presence"
    ROSTER = "roster"
    WHITELIST = "whitelist"
    AUTHORIZE = "authorize"


class PublishModel(StrEnum):
    """Who may publish (XEP-0060 §16.4.4 ``pubsub#publish_model``)."""

    PUBLISHERS = "publishers"
    SUBSCRIBERS = "subscribers"
    OPEN = "open"


class SendLast(StrEnum):
    """When the last item is sent (XEP-0060 §16.4.4 ``send_last_published_item``)."""

    NEVER = "never"
    ON_SUB = "on_sub"
    ON_SUB_AND_PRESENCE = "on_sub_and_presence"


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """The options of a leaf node (XEP-0060 §16.4.4)."""

    access_model: AccessModel = AccessModel.OPEN
    publish_model: PublishModel = PublishModel.PUBLISHERS
    max_items: int | None = 10
    persist_items: bool = True
    deliver_notifications: bool = True
    deliver_payloads: bool = True
    notify_config: bool = False
    notify_delete: bool = True
    notify_retract: bool = True
    notify_sub: bool = False
    presence_based_delivery: bool = False
    send_last_published_item: SendLast = SendLast.ON_SUB_AND_PRESENCE
    itemreply: str = "owner"
    title: str = ""
    type: str = ""
    roster_groups_allowed: tuple[str, ...] = ()
    notification_type: str = "headline"

    def pairs(self) -> tuple[tuple[str, str], ...]:
        """The configuration as ``(option, value)`` strings, for storage
        (multi-valued options repeat the name)."""
        out: list[tuple[str, str]] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                out.extend((f.name, v) for v in value)
            else:
                out.append((f.name, _text(value)))
        return tuple(out)

    @classmethod
    def from_pairs(cls, pairs: tuple[tuple[str, str], ...], base: NodeConfig) -> NodeConfig:
        """The configuration :meth:`pairs` wrote, over ``base`` for options it lacks."""
        values: dict[str, str | tuple[str, ...]] = {}
        for name, value in pairs:
            if name == "roster_groups_allowed":
                groups = values.get(name, ())
                assert isinstance(groups, tuple)
                values[name] = (*groups, value)
            else:
                values[name] = value
        return _with_values(base, {_P + k: v for k, v in values.items()}, strict=False)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return "max"
    return str(value)


_BOOLS: Final = (
    "persist_items",
    "deliver_notifications",
    "deliver_payloads",
    "notify_config",
    "notify_delete",
    "notify_retract",
    "notify_sub",
    "presence_based_delivery",
)
_ENUMS: Final[dict[str, type[StrEnum]]] = {
    "access_model": AccessModel,
    "publish_model": PublishModel,
    "send_last_published_item": SendLast,
}
_CHOICES: Final = {"itemreply": ("owner", "publisher"), "notification_type": ("headline", "normal")}
_STRINGS: Final = ("title", "type")


def _bad(text: str) -> PubSubError:
    return PubSubError(StanzaErrorCondition.NOT_ACCEPTABLE, text=text)


def _bool(raw: str, name: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false", ""):
        return False
    raise _bad(f"{name}: {raw!r} is not a boolean")


def _with_values(
    base: NodeConfig, values: dict[str, str | tuple[str, ...]], *, strict: bool
) -> NodeConfig:
    """``base`` with the ``pubsub#`` options in ``values``; unknown options
    are refused (``strict``) or skipped."""
    changes: dict[str, object] = {}
    for var, raw in values.items():
        if var == FORM_TYPE or not var.startswith(_P):
            if strict and var != FORM_TYPE:
                raise _bad(f"unknown option {var}")
            continue
        name = var.removeprefix(_P)
        if name == "roster_groups_allowed":
            changes[name] = raw if isinstance(raw, tuple) else (raw,)
            continue
        text = raw[0] if isinstance(raw, tuple) and raw else raw if isinstance(raw, str) else ""
        if name in _BOOLS:
            changes[name] = _bool(text, var)
        elif name in _ENUMS:
            try:
                changes[name] = _ENUMS[name](text.strip())
            except ValueError:
                raise _bad(f"{var}: {text!r} is not a choice") from None
        elif name in _CHOICES:
            if text.strip() not in _CHOICES[name]:
                raise _bad(f"{var}: {text!r} is not a choice")
            changes[name] = text.strip()
        elif name in _STRINGS:
            changes[name] = text
        elif name == "max_items":
            changes[name] = _max_items(text)
        elif strict:
            raise _bad(f"unknown option {var}")
    return replace(base, **changes)  # type: ignore[arg-type]


def _max_items(text: str) -> int | None:
    text = text.strip()
    if text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        raise _bad(f"pubsub#max_items: {text!r} is not a number or max") from None
    if value < 1:
        raise _bad("pubsub#max_items must be at least 1")
    return value


def _form_values(form: Form) -> dict[str, str | tuple[str, ...]]:
    out: dict[str, str | tuple[str, ...]] = {}
    for f in form.fields:
        if f.var is None:
            continue
        out[f.var] = (
            f.values
            if f.type in (FieldType.LIST_MULTI, FieldType.TEXT_MULTI)
            or (f.var == _P + "roster_groups_allowed")
            else (f.values[0] if f.values else "")
        )
    return out


def apply_form(base: NodeConfig, form: Form, *, max_items_limit: int) -> NodeConfig:
    """``base`` configured by the submitted ``form`` (XEP-0060 §8.2.4): a
    ``not-acceptable`` error for an unknown option or a bad value, a
    ``bad-request`` for a form of another FORM_TYPE."""
    if form.type is not FormType.SUBMIT:
        raise PubSubError(StanzaErrorCondition.BAD_REQUEST, text="a submit form is required")
    form_type = form.value(FORM_TYPE)
    if form_type is not None and form_type != NODE_CONFIG:
        raise PubSubError(StanzaErrorCondition.BAD_REQUEST, text="FORM_TYPE is not node_config")
    config = _with_values(base, _form_values(form), strict=True)
    if config.max_items is not None and config.max_items > max_items_limit:
        raise _bad(f"pubsub#max_items above the limit of {max_items_limit}")
    return config


def check_preconditions(config: NodeConfig, form: Form, *, max_items_limit: int) -> None:
    """Raise ``conflict`` + ``precondition-not-met`` unless every option in
    the publish-options ``form`` has the node's value (XEP-0060 §7.1.5)."""
    if preconditioned(config, form, max_items_limit=max_items_limit) != config:
        raise PubSubError(StanzaErrorCondition.CONFLICT, "precondition-not-met")


def preconditioned(base: NodeConfig, form: Form, *, max_items_limit: int) -> NodeConfig:
    """``base`` with the options of the publish-options ``form``: what a node
    auto-created by the publish gets (XEP-0060 §7.1.5), and what an existing
    node must equal. A bad value is ``conflict`` + ``precondition-not-met``,
    a form of another FORM_TYPE ``bad-request``."""
    form_type = form.value(FORM_TYPE)
    if form_type is not None and form_type != PUBLISH_OPTIONS:
        raise PubSubError(StanzaErrorCondition.BAD_REQUEST, text="FORM_TYPE is not publish-options")
    fields = tuple(f for f in form.fields if f.var is not None and f.var != FORM_TYPE)
    try:
        return apply_form(
            base,
            replace(form, type=FormType.SUBMIT, fields=fields),
            max_items_limit=max_items_limit,
        )
    except PubSubError as exc:
        raise PubSubError(
            StanzaErrorCondition.CONFLICT, "precondition-not-met", text=exc.text
        ) from None


def _list(var: str, value: str, choices: tuple[str, ...], label: str) -> Field:
    return Field(
        var,
        FieldType.LIST_SINGLE,
        label,
        values=(value,),
        options=tuple(Option(c, c) for c in choices),
    )


def config_form(config: NodeConfig, *, max_items_limit: int) -> Form:
    """The ``pubsub#node_config`` form holding ``config`` (XEP-0060 §8.2.2)."""

    def boolean(name: str, label: str) -> Field:
        return Field(_P + name, FieldType.BOOLEAN, label, values=(_text(getattr(config, name)),))

    max_items = "max" if config.max_items is None else str(config.max_items)
    return Form(
        FormType.FORM,
        fields=(
            Field(FORM_TYPE, FieldType.HIDDEN, values=(NODE_CONFIG,)),
            Field(_P + "title", FieldType.TEXT_SINGLE, "A friendly name", values=(config.title,)),
            Field(_P + "type", FieldType.TEXT_SINGLE, "Payload type", values=(config.type,)),
            _list(
                _P + "access_model",
                config.access_model.value,
                tuple(m.value for m in AccessModel),
                "Access model",
            ),
            Field(
                _P + "roster_groups_allowed",
                FieldType.LIST_MULTI,
                "Roster groups allowed",
                values=config.roster_groups_allowed,
            ),
            _list(
                _P + "publish_model",
                config.publish_model.value,
                tuple(m.value for m in PublishModel),
                "Publish model",
            ),
            Field(
                _P + "max_items",
                FieldType.TEXT_SINGLE,
                f"Max items to persist (at most {max_items_limit}, or max)",
                values=(max_items,),
            ),
            boolean("persist_items", "Persist items"),
            boolean("deliver_notifications", "Deliver event notifications"),
            boolean("deliver_payloads", "Deliver payloads with notifications"),
            boolean("notify_config", "Notify on configuration changes"),
            boolean("notify_delete", "Notify when the node is deleted"),
            boolean("notify_retract", "Notify when items are retracted"),
            boolean("notify_sub", "Notify owners of new subscriptions"),
            boolean("presence_based_delivery", "Deliver only to available users"),
            _list(
                _P + "send_last_published_item",
                config.send_last_published_item.value,
                tuple(m.value for m in SendLast),
                "When to send the last item",
            ),
            _list(
                _P + "itemreply", config.itemreply, _CHOICES["itemreply"], "Who replies to items"
            ),
            _list(
                _P + "notification_type",
                config.notification_type,
                _CHOICES["notification_type"],
                "Message type of notifications",
            ),
        ),
    )
