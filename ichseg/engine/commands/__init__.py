"""``ichseg train | evaluate | predict`` (see ``ichseg.cli.COMMANDS``)."""
