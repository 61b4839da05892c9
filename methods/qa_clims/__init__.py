"""QA-CLIMS: RITC contrast against the QAPE corpus (FRC + BRC + REG, FAT).

`paper.py`: its settings, variants, table rows and sweep grids (torch-free); `method.py`:
its losses and its stage (the QAPE corpus: methods/qape.py, methods/vqa.py)."""
