"""SemPLeS: segment-label matching, contrastive prompt learning, prompt-guided refinement.

`paper.py`: its settings, variants, table rows and sweep grids (torch-free); `method.py`:
its three stages and their losses (Eqs. 1-3)."""
