"""The built-in demo world: a seeded synthetic input bundle with planted campaigns and look-alikes.

Examples
--------
>>> from hydrascope.demo import generate_world          # doctest: +SKIP
>>> info = generate_world("worlds/demo", n_accounts=3000, seed=0)   # doctest: +SKIP
>>> sorted(info.campaigns)                               # doctest: +SKIP
"""

from hydrascope.demo.world import FORMATS, WorldInfo, generate_world, load_sample_prompts

__all__ = ["generate_world", "WorldInfo", "FORMATS", "load_sample_prompts"]
