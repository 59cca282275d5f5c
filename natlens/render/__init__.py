"""Renderers: result tables to text (``registry.render``), reports for people, terminal
safety (``terminal``). Nothing is imported here: ``terminal`` stays light for the modules that
only escape text."""
