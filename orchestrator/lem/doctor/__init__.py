"""``lem doctor``: what this host can do (``facts``: gathered; ``checks``: judged, with fixes)."""
