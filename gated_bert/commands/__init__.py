"""The `gated-bert` subcommands, one module each: parse, build the settings, call the library."""
