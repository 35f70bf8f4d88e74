"""gradlab: the helper library that sits beside the Taming Gradients notebooks.

It holds what the notebooks build on but do not ask the learner to write: synthetic data sets, the
reference NumPy RNN of notebook 01 (used from notebook 02 on), plotting and widget builders, and the
glue that lets the autograder check learner code from outside the learner's process.

Rule: gradlab never holds the answer to an exercise of the notebook that uses it. Where a widget needs
an exercise's answer, its builder takes the learner's function as an argument.
"""

__version__ = "0.1.0"
