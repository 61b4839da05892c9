"""CAM: the multi-label classifier baseline every CLIP-guided method starts from.

`paper.py`: its settings (the IRN CAM stage every family shares), variants and table rows
(torch-free); `method.py`: the family and its training stage."""
