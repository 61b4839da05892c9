"""CLIMS: CLIP matching of sigmoid-masked crops with manual background prompts.

`paper.py`: its settings, variants and table rows (torch-free); `method.py`: its losses
and its stage."""
