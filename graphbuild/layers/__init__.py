"""The four evidence layers; each turns the bundle into (account, identifier) uses."""

from graphbuild.layers.network import network_uses
from graphbuild.layers.payment import payment_uses
from graphbuild.layers.prompts import prompt_templates, REASONING_PATTERN, JAILBREAK_PATTERN
from graphbuild.layers.timing import timing_uses, window_activity, choose_timing_window

__all__ = ["network_uses", "payment_uses", "prompt_templates", "timing_uses", "window_activity", "choose_timing_window",
           "REASONING_PATTERN", "JAILBREAK_PATTERN"]
