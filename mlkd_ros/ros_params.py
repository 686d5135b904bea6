"""Declaring node parameters with a description and a range in one line each."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter


def declare(
    node: Node,
    name: str,
    default: Any,
    description: str,
    lo: float | None = None,
    hi: float | None = None,
    read_only: bool = False,
) -> Any:
    """Declare `name` and return its (possibly YAML-overridden) value; lo..hi is enforced by rclpy."""
    desc = ParameterDescriptor(description=description, read_only=read_only)
    if lo is not None and hi is not None:
        if isinstance(default, bool):
            raise TypeError(f"parameter {name}: a range makes no sense for a bool")
        if isinstance(default, int):
            desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        else:
            desc.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    # A launch argument `rate:=2` reaches the node as an integer (launch types values as YAML); rclpy would
    # refuse it for a float parameter. An integer is a valid float: widen it (overrides are rclpy's own dict).
    override = node._parameter_overrides.get(name)
    if isinstance(default, float) and override is not None and override.type_ == Parameter.Type.INTEGER:
        node._parameter_overrides[name] = Parameter(name, Parameter.Type.DOUBLE, float(override.value))
    return node.declare_parameter(name, default, desc).value
