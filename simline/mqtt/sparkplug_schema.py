"""The Sparkplug B payload schema, built in code with the protobuf runtime (no generated module, no .proto file).

Field numbers and types follow the Sparkplug 3.0.0 specification (chapter 6.4, "Sparkplug B payload"); only the
parts simline sends or reads are declared: ``Payload`` (timestamp, metrics, seq, uuid, body) and
``Payload.Metric`` (name, alias, timestamp, datatype, the historical/transient/null flags and the scalar members
of the ``value`` oneof). Unknown fields sent by other clients are kept and ignored by protobuf, so the messages
stay wire compatible with full implementations.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["Payload"]

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "org.eclipse.tahu.protobuf"  # the package name the specification uses, so type URLs match


def _field(message: Any, name: str, number: int, kind: int, label: int = _F.LABEL_OPTIONAL, **extra: Any) -> Any:
    f = message.field.add(name=name, number=number, type=kind, label=label, **extra)
    return f


def _file() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto(name="simline/sparkplug_b.proto", package=_PACKAGE, syntax="proto2")
    payload = fdp.message_type.add(name="Payload")
    metric = payload.nested_type.add(name="Metric")
    _field(metric, "name", 1, _F.TYPE_STRING)
    _field(metric, "alias", 2, _F.TYPE_UINT64)
    _field(metric, "timestamp", 3, _F.TYPE_UINT64)
    _field(metric, "datatype", 4, _F.TYPE_UINT32)
    _field(metric, "is_historical", 5, _F.TYPE_BOOL)
    _field(metric, "is_transient", 6, _F.TYPE_BOOL)
    _field(metric, "is_null", 7, _F.TYPE_BOOL)
    metric.oneof_decl.add(name="value")
    for name, number, kind in (
        ("int_value", 10, _F.TYPE_UINT32),
        ("long_value", 11, _F.TYPE_UINT64),
        ("float_value", 12, _F.TYPE_FLOAT),
        ("double_value", 13, _F.TYPE_DOUBLE),
        ("boolean_value", 14, _F.TYPE_BOOL),
        ("string_value", 15, _F.TYPE_STRING),
        ("bytes_value", 16, _F.TYPE_BYTES),
    ):
        _field(metric, name, number, kind, oneof_index=0)
    _field(payload, "timestamp", 1, _F.TYPE_UINT64)
    _field(payload, "metrics", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, type_name=f".{_PACKAGE}.Payload.Metric")
    _field(payload, "seq", 3, _F.TYPE_UINT64)
    _field(payload, "uuid", 4, _F.TYPE_STRING)
    _field(payload, "body", 5, _F.TYPE_BYTES)
    return fdp


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_file())
Payload: Any = message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{_PACKAGE}.Payload"))
"""The Sparkplug B ``Payload`` message class; ``Payload.Metric`` is its metric."""
