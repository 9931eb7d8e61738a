"""Pieces shared by training, prediction and ``mmm extract``: the sequence format, model I/O, bucketing."""
