"""Analyses: each a query on the case's tables and a thin Python function around it.

queries names the ones a user can print for their own engine (``natlens sql``).
"""
