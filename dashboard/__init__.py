"""Ohjaustaulu: the app shell, components, charts, translations and the command line."""
