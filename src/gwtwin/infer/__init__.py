"""Offline cleaning and veto over any span of frames."""
