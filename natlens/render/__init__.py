"""Renderers: result tables to text (registry.render), reports for people, terminal safety."""

from natlens.render.registry import RENDERERS, Rows, render

__all__ = ["RENDERERS", "Rows", "render"]
