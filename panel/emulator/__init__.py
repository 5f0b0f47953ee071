"""A local emulator of the Anthropic Messages, OpenAI Chat Completions and Responses APIs.

See docs/emulator.md.
"""

from panel.emulator.faults import FAULT_NAMES, FaultRule
from panel.emulator.ratelimit import RateLimits
from panel.emulator.state import EmulatorConfig, EmulatorState

__all__ = ["FAULT_NAMES", "EmulatorConfig", "EmulatorState", "FaultRule", "RateLimits"]
