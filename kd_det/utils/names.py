"""File-system names derived from display names (benchmark rows, deployment rows)."""


def path_slug(name: str) -> str:
    """``'mmrazor CWD (FPN)'`` -> ``'mmrazor_cwd__fpn'``: letters and digits kept, lower case,
    everything else ``_``; used as a directory or file name."""
    return ''.join(c if c.isalnum() else '_' for c in name).strip('_').lower()
