"""MQTT for the live line: a Unified Namespace (JSON) or Sparkplug B profile, orders and commands in.

An adapter like the OPC UA server: it observes the model's events, samples its state and calls the live driver's
commands, all on the driver's event loop. See ``docs/mqtt.md`` for the topics and payloads.
"""

from simline.mqtt.adapter import MqttAdapter
from simline.mqtt.config import BrokerAddress, MqttConfigError, MqttOptions, parse_bind, parse_broker_url

__all__ = ["BrokerAddress", "MqttAdapter", "MqttConfigError", "MqttOptions", "parse_bind", "parse_broker_url"]
