"""An example handler module for ``examples/bots.toml``: dice rolls and a counter.

``roll`` rolls one six-sided die, ``roll 3d6`` three of them. Anyone saying
"coffee" anywhere is counted (a ``hear`` route); ``coffee count`` tells how
many times. Load it from a bots file as ``module = "dice_handler:Dice"``
(the bots file's directory is on the import path).
"""

from __future__ import annotations

import random
import re

from xmpp_trio.bot import Context, Handler, hear, respond


class Dice(Handler):
    """Rolls dice. Option ``max_dice`` (default 20) caps how many at once."""

    name = "dice"
    known_options = frozenset({"max_dice", "seed"})

    def setup(self) -> None:
        self.max_dice = self.option("max_dice", int, 20)
        self.random = random.Random(self.options.get("seed"))
        self.state["coffees"] = 0

    @respond(
        r"^roll(?:\s+(?P<count>\d+)d(?P<sides>\d+))?$",
        re.IGNORECASE,
        usage="roll [NdM] - roll dice, e.g. roll 2d6",
    )
    async def roll(self, ctx: Context) -> None:
        """Roll ``count`` dice with ``sides`` sides (one d6 by default)."""
        count = int(ctx.match["count"] or 1)
        sides = int(ctx.match["sides"] or 6)
        if not 1 <= count <= self.max_dice or not 2 <= sides <= 1000:
            await ctx.reply(f"I roll 1 to {self.max_dice} dice with 2 to 1000 sides.")
            return
        rolls = [self.random.randint(1, sides) for _ in range(count)]
        total = f" = {sum(rolls)}" if count > 1 else ""
        await ctx.reply(" + ".join(map(str, rolls)) + total)

    @hear(r"(?i)\bcoffee\b(?! count)")
    async def coffee(self, ctx: Context) -> None:
        """Count every mention of coffee."""
        self.state["coffees"] += 1

    @respond(r"^coffee count$", re.IGNORECASE, usage="coffee count - how often coffee came up")
    async def coffee_count(self, ctx: Context) -> None:
        """Say how many times coffee was mentioned."""
        await ctx.reply(f"Coffee came up {self.state['coffees']} times.")
