"""Method families, one package each (cam, clims, semples, qa_clims): `method.py` registers
the family, its torch-free `paper.py` its variants, settings, table rows and sweep grids
(collected by `methods.papers`)."""
