"""tmslab.plot: the paper's figures as functions over loaded runs (matplotlib).

One module per family of figures (geometry arrows, W^T W maps, norm bars, D* and D_i,
phase diagrams, learning dynamics); `plots/*.py` are thin scripts over them. Import the
module you need, e.g. `from tmslab.plot import dynamics`.
"""
